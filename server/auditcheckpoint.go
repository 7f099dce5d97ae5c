package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/cloister-dev/cloister/store"
)

// DefaultAuditCheckpointInterval is how often Serve reads the audit chain
// head and logs it when it moved, unless Config.AuditCheckpointInterval
// sets another interval.
const DefaultAuditCheckpointInterval = 5 * time.Minute

// auditHeadTimeout bounds each read of the audit chain head.
const auditHeadTimeout = 10 * time.Second

// Triggers of an "audit checkpoint" log line, its trigger attribute.
const (
	checkpointAtStart    = "start"
	checkpointAtInterval = "interval"
	checkpointAtShutdown = "shutdown"
)

// auditCheckpointer logs the audit chain head as "audit checkpoint" lines
// with the attributes seq and hash (hex). The chain hashes use no key, so
// someone who can write the database can rewrite records together with
// every later hash and the head. A head that log shipping has copied out
// of the service shows such a change to cloister audit verify
// --checkpoint. It logs only the head, never record content.
type auditCheckpointer struct {
	store    store.Store
	log      *slog.Logger
	interval time.Duration

	// last is the head of the last line logged, with Seq 0 before the
	// first line. Only run and, after run returned, Serve use it.
	last store.AuditHead
}

// run logs the head at once, then every interval when it moved, until
// ctx ends. So it logs at most one line per interval.
func (c *auditCheckpointer) run(ctx context.Context) {
	c.check(ctx, checkpointAtStart, false)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.check(ctx, checkpointAtInterval, false)
		}
	}
}

// check reads the head and logs it, unless the chain is empty or, without
// always, the head is the one logged last. Appends only move the head
// forward. So a head behind the last logged one, or one with the same
// sequence number and another hash, gets an error line first, because the
// database was changed outside the service or restored from a backup.
func (c *auditCheckpointer) check(ctx context.Context, trigger string, always bool) {
	readCtx, cancel := context.WithTimeout(ctx, auditHeadTimeout)
	defer cancel()
	head, err := c.store.AuditHead(readCtx)
	if err != nil {
		// A read that the service's shutdown cut short is no failure,
		// because the shutdown logs the head once more.
		if ctx.Err() == nil {
			c.log.Error("read audit chain head for the audit checkpoint failed", "trigger", trigger, "error", err)
		}
		return
	}

	if head.Seq == 0 {
		// An empty chain has no record whose hash a checkpoint could name.
		return
	}
	unchanged := head.Seq == c.last.Seq && bytes.Equal(head.Hash, c.last.Hash)
	if unchanged && !always {
		return
	}
	if c.last.Seq > 0 && !unchanged && head.Seq <= c.last.Seq {
		c.log.Error("audit chain head moved back or changed without new records since the last audit checkpoint; "+
			"the audit log was changed in the database or restored from a backup, so run cloister audit verify --checkpoint with the last checkpoint",
			"seq", head.Seq, "hash", hex.EncodeToString(head.Hash),
			"checkpoint_seq", c.last.Seq, "checkpoint_hash", hex.EncodeToString(c.last.Hash))
	}
	c.log.Info("audit checkpoint", "seq", head.Seq, "hash", hex.EncodeToString(head.Hash), "trigger", trigger)
	c.last = head
}
