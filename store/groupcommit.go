package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Group commit: one goroutine takes the first queued audit append, then
// every append that is already waiting (up to MaxBatch), and commits them
// all in one transaction. Each caller returns only after that commit.
// Durability is unchanged, because every commit is still synced: SQLite
// runs WAL with synchronous=FULL, and PostgreSQL flushes its WAL at commit
// under its default synchronous_commit=on. The batch shares the cost of one
// sync. Batches form by themselves under load, because appends queue while
// the previous batch is syncing, and a lone append waits for no timer.

const defaultMaxBatch = 256

// maxBatchLimit caps MaxBatch so that one batch INSERT stays below SQLite's
// default limit of 32766 bound parameters (auditInsertColumns per record).
const maxBatchLimit = 2048

// groupCommitTimeout bounds one batch transaction.
const groupCommitTimeout = 30 * time.Second

// errClosed is returned by appends after Close.
var errClosed = errors.New("store: closed")

type pendingAppend struct {
	rec    AuditRecord
	result chan appendResult // buffered, so the committer never blocks
}

type appendResult struct {
	rec AuditRecord
	err error
}

type groupCommitter struct {
	s        *sqlStore
	maxBatch int
	disabled bool
	queue    chan *pendingAppend // unbuffered: a send succeeds only when the committer takes it
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func newGroupCommitter(s *sqlStore, cfg GroupCommitConfig) *groupCommitter {
	g := &groupCommitter{
		s:        s,
		maxBatch: cfg.MaxBatch,
		disabled: cfg.Disabled,
		queue:    make(chan *pendingAppend),
		done:     make(chan struct{}),
	}
	if g.maxBatch <= 0 {
		g.maxBatch = defaultMaxBatch
	}
	g.maxBatch = min(g.maxBatch, maxBatchLimit)
	if !g.disabled {
		g.wg.Add(1)
		go g.run()
	}
	return g
}

func (g *groupCommitter) stop() {
	g.stopOnce.Do(func() { close(g.done) })
	g.wg.Wait()
}

func (g *groupCommitter) run() {
	defer g.wg.Done()
	for {
		var first *pendingAppend
		select {
		case first = <-g.queue:
		case <-g.done:
			return
		}

		batch := []*pendingAppend{first}
	collect:
		for len(batch) < g.maxBatch {
			select {
			case p := <-g.queue:
				batch = append(batch, p)
			default:
				break collect
			}
		}
		g.commit(batch)
	}
}

// commit appends the batch in one transaction and sends each caller the
// outcome. If the transaction fails, every append in it fails.
func (g *groupCommitter) commit(batch []*pendingAppend) {
	ctx, cancel := context.WithTimeout(context.Background(), groupCommitTimeout)
	defer cancel()

	recs := make([]AuditRecord, len(batch))
	for i, p := range batch {
		recs[i] = p.rec
	}
	var out []AuditRecord
	err := g.s.Tx(ctx, func(tx Tx) error {
		var err error
		out, err = tx.(*ops).appendAuditBatch(ctx, recs)
		return err
	})
	if err != nil {
		g.s.cfg.logger().Error("audit group commit failed", "records", len(batch), "error", err)
	}
	for i, p := range batch {
		if err != nil {
			p.result <- appendResult{err: fmt.Errorf("store: group commit of %d audit records: %w", len(batch), err)}
			continue
		}
		p.result <- appendResult{rec: out[i]}
	}
}

// AppendAuditGrouped queues rec for the next batch. If ctx ends while the
// record is queued or committing, the call returns ctx.Err() but the record
// may still be committed.
func (s *sqlStore) AppendAuditGrouped(ctx context.Context, rec AuditRecord) (AuditRecord, error) {
	g := s.group
	rec, err := s.autocommit().prepareAudit(rec)
	if err != nil {
		return AuditRecord{}, err
	}
	if g.disabled {
		return s.AppendAudit(ctx, rec)
	}

	p := &pendingAppend{rec: rec, result: make(chan appendResult, 1)}
	select {
	case g.queue <- p:
	case <-g.done:
		return AuditRecord{}, errClosed
	case <-ctx.Done():
		return AuditRecord{}, ctx.Err()
	}
	select {
	case r := <-p.result:
		return r.rec, r.err
	case <-ctx.Done():
		return AuditRecord{}, ctx.Err()
	}
}
