package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/cloister-dev/cloister/store"
)

// auditLister returns one page of audit records, as store.Store.ListAudit
// and the admin client's ListAudit do.
type auditLister func(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error)

// parseCheckpoints decodes the --checkpoint values: SHA-256 record hashes
// in hex.
func parseCheckpoints(values []string) ([][]byte, error) {
	var out [][]byte
	for _, v := range values {
		h, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil || len(h) != sha256.Size {
			return nil, usageError("invalid --checkpoint %q: pass the %d hex digits of a head that audit verify printed", v, 2*sha256.Size)
		}
		out = append(out, h)
	}
	return out, nil
}

// checkCheckpoints returns an exit-1 error unless a record of the audit
// log has each checkpoint hash. It runs after the chain verified, so a
// found hash shows that the records up to it are unchanged since the
// checkpoint was taken. It reads the log again because VerifyAudit
// returns only the head.
func checkCheckpoints(ctx context.Context, w io.Writer, format string, list auditLister, checkpoints [][]byte) error {
	if len(checkpoints) == 0 {
		return nil
	}
	found := make([]int64, len(checkpoints))
	var after int64
	for {
		page, err := list(ctx, store.AuditQuery{AfterSeq: after})
		if err != nil {
			return fmt.Errorf("reading the audit log for --checkpoint: %w", err)
		}
		for _, r := range page {
			for i, h := range checkpoints {
				if found[i] == 0 && bytes.Equal(r.Hash, h) {
					found[i] = r.Seq
				}
			}
			after = r.Seq
		}
		if len(page) == 0 {
			break
		}
	}
	for i, h := range checkpoints {
		if found[i] == 0 {
			return &exitError{code: exitRejected, err: fmt.Errorf("checkpoint %x: no record of the audit chain has this hash, "+
				"so records up to that checkpoint were changed or removed since it was taken, and the hashes after them rewritten; "+
				"compare the records with a backup taken at that time", h)}
		}
		if format == "text" {
			fmt.Fprintf(w, "checkpoint %x: record %d\n", h, found[i])
		}
	}
	return nil
}
