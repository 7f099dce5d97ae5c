package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cloister-dev/cloister/store"
)

// auditLister returns one page of audit records, as store.Store.ListAudit
// and the admin client's ListAudit do.
type auditLister func(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error)

// checkpoint is a --checkpoint value: the hash of an audit record and,
// when the value names it, the record's sequence number.
type checkpoint struct {
	seq  int64 // 0 when the value gave only the hash
	hash []byte
}

// parseCheckpoints decodes the --checkpoint values: SHA-256 record hashes
// in hex, each optionally preceded by the record's sequence number and a
// colon (SEQ:HEX), as the "audit checkpoint" lines of cloister serve and
// cloister audit head print them.
func parseCheckpoints(values []string) ([]checkpoint, error) {
	var out []checkpoint
	for _, v := range values {
		var cp checkpoint
		text := strings.TrimSpace(v)
		if seqText, hashText, ok := strings.Cut(text, ":"); ok {
			seq, err := strconv.ParseInt(seqText, 10, 64)
			if err != nil || seq < 1 {
				return nil, usageError("invalid --checkpoint %q: the part before the colon must be a record's sequence number (1 or more), as the seq of an audit checkpoint line", v)
			}
			cp.seq, text = seq, hashText
		}
		h, err := hex.DecodeString(text)
		if err != nil || len(h) != sha256.Size {
			return nil, usageError("invalid --checkpoint %q: pass the %d hex digits of a head that audit verify, audit head or an audit checkpoint log line printed, optionally as SEQ:HEX", v, 2*sha256.Size)
		}
		cp.hash = h
		out = append(out, cp)
	}
	return out, nil
}

// checkCheckpoints returns an exit-1 error unless the audit log contains
// each checkpoint. For SEQ:HEX the record SEQ must have that hash, and one
// read of that record checks it. For a bare hash some record must have
// it, which reads the log again from the start. It runs after the chain
// verified, so a found hash shows that the records up to it are unchanged
// since the checkpoint was taken.
func checkCheckpoints(ctx context.Context, w io.Writer, format string, list auditLister, checkpoints []checkpoint) error {
	if len(checkpoints) == 0 {
		return nil
	}
	found := make([]int64, len(checkpoints))
	scan := false
	for i, cp := range checkpoints {
		if cp.seq == 0 {
			scan = true
			continue
		}
		page, err := list(ctx, store.AuditQuery{AfterSeq: cp.seq - 1, Limit: 1})
		if err != nil {
			return fmt.Errorf("reading audit record %d for --checkpoint: %w", cp.seq, err)
		}
		switch {
		case len(page) == 0 || page[0].Seq != cp.seq:
			return &exitError{code: exitRejected, err: fmt.Errorf("checkpoint %d:%x: the audit chain has no record %d, "+
				"so records up to that checkpoint were removed since it was taken, and the chain after them rewritten; "+
				"compare the records with a backup taken at that time", cp.seq, cp.hash, cp.seq)}
		case !bytes.Equal(page[0].Hash, cp.hash):
			return &exitError{code: exitRejected, err: fmt.Errorf("checkpoint %d:%x: record %d has the hash %x, "+
				"so records up to that checkpoint were changed or removed since it was taken, and the hashes after them rewritten; "+
				"compare the records with a backup taken at that time", cp.seq, cp.hash, cp.seq, page[0].Hash)}
		}
		found[i] = cp.seq
	}
	if scan {
		if err := findCheckpointHashes(ctx, list, checkpoints, found); err != nil {
			return err
		}
	}

	for i, cp := range checkpoints {
		if found[i] == 0 {
			return &exitError{code: exitRejected, err: fmt.Errorf("checkpoint %x: no record of the audit chain has this hash, "+
				"so records up to that checkpoint were changed or removed since it was taken, and the hashes after them rewritten; "+
				"compare the records with a backup taken at that time", cp.hash)}
		}
		if format == "text" {
			fmt.Fprintf(w, "checkpoint %x: record %d\n", cp.hash, found[i])
		}
	}
	return nil
}

// findCheckpointHashes reads the whole audit log and sets found[i] to the
// sequence number of the record with the hash of checkpoints[i], for each
// checkpoint without a sequence number.
func findCheckpointHashes(ctx context.Context, list auditLister, checkpoints []checkpoint, found []int64) error {
	var after int64
	for {
		page, err := list(ctx, store.AuditQuery{AfterSeq: after})
		if err != nil {
			return fmt.Errorf("reading the audit log for --checkpoint: %w", err)
		}
		for _, r := range page {
			for i, cp := range checkpoints {
				if found[i] == 0 && cp.seq == 0 && bytes.Equal(r.Hash, cp.hash) {
					found[i] = r.Seq
				}
			}
			after = r.Seq
		}
		if len(page) == 0 {
			return nil
		}
	}
}
