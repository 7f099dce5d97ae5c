package kbs

import (
	"context"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/semaphore"
)

// DefaultBodyBudget is the default of Server.BodyBudget: room for eight
// bodies of DefaultMaxBodySize at one time, about 75 MiB.
const DefaultBodyBudget = 8 * DefaultMaxBodySize

// bodyBudgetChunk is the most that one read of a body takes from the
// client before it takes room in the budget for what it read.
const bodyBudgetChunk = 32 << 10

// bodyBudget bounds the bytes of the request bodies that the server keeps
// in memory at one time. Without it, many clients that each send a body
// just under the size limit could make the server keep all of them at once.
type bodyBudget struct {
	once sync.Once
	size int64
	sem  *semaphore.Weighted
}

// init sets the budget's size once: budget, or DefaultBodyBudget when
// budget is not positive, and at least limit, because a smaller budget
// would block the largest bodies forever.
func (b *bodyBudget) init(budget, limit int64) {
	b.once.Do(func() {
		if budget <= 0 {
			budget = DefaultBodyBudget
		}
		b.size = max(budget, limit)
		b.sem = semaphore.NewWeighted(b.size)
	})
}

// budgetReader reads a request body and takes room in the body budget for
// the bytes each read returned, so that a client that declares a large
// body and sends it slowly takes room only for what it has sent. The room
// stays taken until release, because the handler keeps the bytes, and
// what it decodes from them, until it is done.
//
// NOTE: large bodies that together exceed the budget and arrive at the
// same time can each stop part way and wait for the others until their
// deadlines, because none of them can finish.
type budgetReader struct {
	ctx      context.Context
	r        io.Reader
	budget   *bodyBudget
	reserved int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if len(p) > bodyBudgetChunk {
		p = p[:bodyBudgetChunk]
	}
	n, err := b.r.Read(p)
	if n == 0 {
		return 0, err
	}
	if acquireErr := b.budget.sem.Acquire(b.ctx, int64(n)); acquireErr != nil {
		return n, fmt.Errorf("no room for the %d bytes of the request body read so far before the request ended (%v): the request bodies in flight fill the server's budget of %d bytes. Retry later",
			b.reserved+int64(n), context.Cause(b.ctx), b.budget.size)
	}
	b.reserved += int64(n)
	return n, err
}

// release gives back the room of every byte read.
func (b *budgetReader) release() {
	b.budget.sem.Release(b.reserved)
	b.reserved = 0
}
