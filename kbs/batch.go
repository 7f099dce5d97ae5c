package kbs

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloister-dev/cloister/store"
)

// Group commit of session writes: /auth and /attest each end in a durable
// transaction, and a database syncs every commit (SQLite: WAL with
// synchronous=FULL, one writer at a time). Under load, the writes that
// queue while a batch commits are run together in the next transaction, so
// one sync serves the whole batch. Each caller returns only after the
// commit of its own writes, so durability and atomicity per request are
// unchanged. When any write of a batch fails, the batch is rolled back and
// each write runs again in a transaction of its own, so that one request's
// failure (an attested or expired session) does not fail the writes of
// the others.
//
// The store groups audit appends the same way (AppendAuditGrouped), but
// not transactions with several writes, which an attestation needs.
//
// Batches that form by themselves held about two writes at 16 parallel
// guests, because a commit starts as soon as one write waits. So a batch
// first waits CommitDelay for more writes while at least commitSiblings
// other KBS requests are in flight, as PostgreSQL's commit_delay waits
// only while commit_siblings other transactions are active. With fewer
// requests in flight, a batch commits at once. The server section of
// BENCHMARKS.md has the measured effect.

// DefaultCommitDelay is the commit delay when Server.CommitDelay is zero.
const DefaultCommitDelay = 500 * time.Microsecond

// commitSiblings is the fewest other KBS requests in flight for which a
// batch waits for the commit delay.
const commitSiblings = 4

// maxTxBatch bounds the writes in one batch transaction.
const maxTxBatch = 128

// txBatchTimeout bounds one batch transaction.
const txBatchTimeout = 30 * time.Second

// CommitObserver is implemented by an Observer that also receives the
// group commits of session writes and audit records, so that an operator
// can see how many writes share a sync and tune CommitDelay. Its method
// must not block, because it runs on the goroutine that commits the next
// batch.
type CommitObserver interface {
	// Commit reports one batch transaction: the writes it carried, the
	// time from its start to the end of its commit or rollback, and
	// whether it committed. After a failed batch, each write runs again on
	// its own and is reported as a batch of one.
	Commit(writes int, d time.Duration, committed bool)
}

type txItem struct {
	fn   func(ctx context.Context, tx store.Tx) error
	done chan error
}

// txBatcher runs transactions of one store in batches. The zero value is
// ready to use. A goroutine drains the queue while there is work and ends
// when it is empty.
type txBatcher struct {
	mu      sync.Mutex
	pending []*txItem
	running bool
	// delay is the commit delay; zero or less commits at once.
	delay time.Duration
	// active counts the KBS requests in flight.
	active atomic.Int64
	// sleep waits for the commit delay; nil means time.Sleep.
	sleep func(time.Duration)
	// observer, when set, receives each batch transaction.
	observer CommitObserver
}

// do runs fn in a transaction, possibly shared with other callers' writes,
// and returns after that transaction committed or failed. fn must only
// write through tx and must be safe to run twice: after a failed batch it
// runs again on its own. delay is the server's commit delay, and observer,
// if not nil, receives the batch transactions.
func (b *txBatcher) do(st store.Store, delay time.Duration, observer CommitObserver, fn func(ctx context.Context, tx store.Tx) error) error {
	it := &txItem{fn: fn, done: make(chan error, 1)}
	b.mu.Lock()
	b.delay = delay
	b.observer = observer
	b.pending = append(b.pending, it)
	if !b.running {
		b.running = true
		go b.drain(st)
	}
	b.mu.Unlock()
	// The caller waits even when its request is cancelled, because a
	// write that commits after the caller gave up would be invisible to
	// it.
	return <-it.done
}

func (b *txBatcher) drain(st store.Store) {
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		wait, delay := b.siblingsInFlight(), b.delay
		b.mu.Unlock()
		if wait {
			b.waitForWrites(delay)
		}

		b.mu.Lock()
		n := min(len(b.pending), maxTxBatch)
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		observer := b.observer
		b.mu.Unlock()
		commitBatch(st, batch, observer)
	}
}

// siblingsInFlight reports whether a batch should wait for the commit
// delay: at least commitSiblings KBS requests are in flight besides those
// whose writes already wait. b.mu must be held.
func (b *txBatcher) siblingsInFlight() bool {
	return b.delay > 0 && b.active.Load()-int64(len(b.pending)) >= commitSiblings
}

// waitForWrites waits for the commit delay.
func (b *txBatcher) waitForWrites(delay time.Duration) {
	if b.sleep != nil {
		b.sleep(delay)
		return
	}
	time.Sleep(delay)
}

func commitBatch(st store.Store, batch []*txItem, observer CommitObserver) {
	ctx, cancel := context.WithTimeout(context.Background(), txBatchTimeout)
	defer cancel()
	err := runBatch(ctx, st, batch, observer)
	if err == nil || len(batch) == 1 {
		for _, it := range batch {
			it.done <- err
		}
		return
	}
	for _, it := range batch {
		it.done <- runBatch(ctx, st, []*txItem{it}, observer)
	}
}

// runBatch runs the writes of batch in one transaction and reports it to
// observer, if set.
func runBatch(ctx context.Context, st store.Store, batch []*txItem, observer CommitObserver) error {
	start := time.Now()
	err := st.Tx(ctx, func(tx store.Tx) error {
		for _, it := range batch {
			if err := it.fn(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if observer != nil {
		observer.Commit(len(batch), time.Since(start), err == nil)
	}
	return err
}
