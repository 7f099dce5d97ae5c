package kbs

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/sync/semaphore"
)

// DefaultBodyBudget is the default of Server.BodyBudget: room for eight
// bodies of DefaultMaxBodySize at one time, about 75 MiB.
const DefaultBodyBudget = 8 * DefaultMaxBodySize

// bodyBudget bounds the bytes of the request bodies that the server reads
// and handles at one time. Without it, many clients that each send a body
// just under the size limit could make the server hold all of them at once.
type bodyBudget struct {
	once sync.Once
	size int64
	sem  *semaphore.Weighted
}

// reserveBody takes room in the server's body budget for the body of r,
// which is at most limit bytes, and returns the function that gives the
// room back once the handler no longer holds the body. A request reserves
// its declared Content-Length, or limit when it declares none. It waits
// for room until the context of r ends, and then returns an error.
func (s *Server) reserveBody(r *http.Request, limit int64) (release func(), err error) {
	b := &s.bodies
	b.once.Do(func() {
		// A budget smaller than the limit would block the largest bodies
		// forever, so it is raised to the limit.
		b.size = max(s.BodyBudget, limit)
		if s.BodyBudget <= 0 {
			b.size = max(DefaultBodyBudget, limit)
		}
		b.sem = semaphore.NewWeighted(b.size)
	})

	n := limit
	if r.ContentLength >= 0 {
		n = min(r.ContentLength, limit)
	}
	ctx := r.Context()
	if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, fmt.Errorf("no room to read the request body of up to %d bytes before the request ended (%v): the request bodies in flight fill the server's budget of %d bytes. Retry later",
			n, context.Cause(ctx), b.size)
	}
	return func() { b.sem.Release(n) }, nil
}
