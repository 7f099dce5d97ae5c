package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/store"
)

// A head printed by one run of audit verify is found by a later run after
// more records were appended, through the database and through the
// service. A hash that no record has fails with exit code 1.
func TestAuditVerifyCheckpoint(t *testing.T) {
	s := startService(t)
	if out, code := s.run(t, strings.NewReader("value"), "secret", "put", "default/app/audited"); code != exitOK {
		t.Fatalf("secret put: exit code %d:\n%s", code, out)
	}
	out, code := s.run(t, nil, "audit", "verify", "--data-dir", s.dataDir, "-o", "json")
	if code != exitOK {
		t.Fatalf("audit verify -o json: exit code %d:\n%s", code, out)
	}
	var v store.AuditVerification
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("audit verify -o json output is not JSON: %v\n%s", err, out)
	}
	head := hex.EncodeToString(v.Head)
	if out, code := s.run(t, nil, "refvalue", "add", "snp.measurement", strings.Repeat("5d", 48)); code != exitOK {
		t.Fatalf("refvalue add: exit code %d:\n%s", code, out)
	}

	unknown := strings.Repeat("ab", 32)
	runAdminSteps(t, s, []adminStep{
		{name: "checkpoint in the database", args: []string{"audit", "verify", "--data-dir", s.dataDir, "--checkpoint", head},
			want: []string{"audit chain intact: 2 records", "checkpoint " + head + ": record 1"}},
		{name: "checkpoint through the service", args: []string{"audit", "verify", "--checkpoint", head},
			want: []string{"checkpoint " + head + ": record 1"}},
		{name: "checkpoint not in the chain", args: []string{"audit", "verify", "--data-dir", s.dataDir, "--checkpoint", head, "--checkpoint", unknown},
			exit: exitRejected, want: []string{"checkpoint " + unknown, "no record of the audit chain has this hash", "compare the records with a backup"}},
		{name: "checkpoint with seq in the database", args: []string{"audit", "verify", "--data-dir", s.dataDir, "--checkpoint", "1:" + head},
			want: []string{"audit chain intact: 2 records", "checkpoint " + head + ": record 1"}},
		{name: "checkpoint with seq through the service", args: []string{"audit", "verify", "--checkpoint", "1:" + head},
			want: []string{"checkpoint " + head + ": record 1"}},
		{name: "checkpoint with seq of another record", args: []string{"audit", "verify", "--data-dir", s.dataDir, "--checkpoint", "2:" + head},
			exit: exitRejected, want: []string{"checkpoint 2:" + head, "record 2 has the hash", "compare the records with a backup"}},
		{name: "checkpoint with seq past the chain", args: []string{"audit", "verify", "--checkpoint", "9:" + head},
			exit: exitRejected, want: []string{"checkpoint 9:" + head, "the audit chain has no record 9"}},
		{name: "checkpoint with seq 0", args: []string{"audit", "verify", "--checkpoint", "0:" + head}, exit: exitUsage,
			want: []string{`invalid --checkpoint "0:` + head + `"`, "sequence number"}},
		{name: "checkpoint with seq not a number", args: []string{"audit", "verify", "--checkpoint", "one:" + head}, exit: exitUsage,
			want: []string{`invalid --checkpoint "one:` + head + `"`, "sequence number"}},
		{name: "checkpoint with seq and no hash", args: []string{"audit", "verify", "--checkpoint", "1:"}, exit: exitUsage,
			want: []string{`invalid --checkpoint "1:"`, "64 hex digits"}},
		{name: "checkpoint not hex", args: []string{"audit", "verify", "--checkpoint", "head"}, exit: exitUsage,
			want: []string{`invalid --checkpoint "head"`, "64 hex digits"}},
		{name: "checkpoint too short", args: []string{"audit", "verify", "--checkpoint", "abcd"}, exit: exitUsage,
			want: []string{`invalid --checkpoint "abcd"`}},
	})
}

// A SEQ:HEX checkpoint reads only its record, while a bare hash reads the
// log from the start.
func TestCheckCheckpointsReads(t *testing.T) {
	records := make([]store.AuditRecord, 2500)
	for i := range records {
		records[i] = store.AuditRecord{Seq: int64(i + 1), Hash: bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 16)}
	}
	var queries []store.AuditQuery
	list := func(_ context.Context, q store.AuditQuery) ([]store.AuditRecord, error) {
		queries = append(queries, q)
		limit := q.Limit
		if limit == 0 {
			limit = store.DefaultAuditLimit
		}
		start := min(int(q.AfterSeq), len(records))
		return records[start:min(start+limit, len(records))], nil
	}
	last := records[len(records)-1]

	var out strings.Builder
	err := checkCheckpoints(context.Background(), &out, "text", list, []checkpoint{{seq: last.Seq, hash: last.Hash}})
	if err != nil {
		t.Fatalf("checkpoint %d:%x: %v", last.Seq, last.Hash, err)
	}
	if len(queries) != 1 {
		t.Fatalf("a SEQ:HEX checkpoint ran %d queries, want 1: %+v", len(queries), queries)
	}
	if want := (store.AuditQuery{AfterSeq: last.Seq - 1, Limit: 1}); queries[0] != want {
		t.Errorf("a SEQ:HEX checkpoint queried %+v, want %+v", queries[0], want)
	}
	if want := fmt.Sprintf("checkpoint %x: record %d", last.Hash, last.Seq); !strings.Contains(out.String(), want) {
		t.Errorf("output %q does not contain %q", out.String(), want)
	}

	queries = nil
	err = checkCheckpoints(context.Background(), io.Discard, "text", list, []checkpoint{{hash: last.Hash}})
	if err != nil {
		t.Fatalf("checkpoint %x: %v", last.Hash, err)
	}
	if len(queries) < 3 {
		t.Errorf("a bare hash ran %d queries, want one per page of the log: %+v", len(queries), queries)
	}
}

// parseCheckpoints accepts a value only as HEX or SEQ:HEX of a SHA-256
// hash and a positive sequence number, and its result formats as a value
// that parses to the same checkpoint.
func FuzzParseCheckpoints(f *testing.F) {
	head := strings.Repeat("3f", 32)
	for _, seed := range []string{head, "17:" + head, " 17:" + head + "\n", "0:" + head, "-1:" + head, "1:", ":" + head,
		"1:2:" + head, strings.ToUpper(head), head[:62], "9223372036854775807:" + head, "9223372036854775808:" + head} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		list, err := parseCheckpoints([]string{value})
		if err != nil {
			if exitCode(t, err) != exitUsage {
				t.Fatalf("parseCheckpoints(%q): %v, want a usage error", value, err)
			}
			return
		}
		if len(list) != 1 {
			t.Fatalf("parseCheckpoints(%q) returned %d checkpoints, want 1", value, len(list))
		}
		cp := list[0]
		if len(cp.hash) != 32 {
			t.Errorf("parseCheckpoints(%q): hash of %d bytes, want 32", value, len(cp.hash))
		}
		if cp.seq < 0 {
			t.Errorf("parseCheckpoints(%q): negative seq %d", value, cp.seq)
		}
		formatted := hex.EncodeToString(cp.hash)
		if cp.seq > 0 {
			formatted = fmt.Sprintf("%d:%s", cp.seq, formatted)
		}
		again, err := parseCheckpoints([]string{formatted})
		if err != nil {
			t.Fatalf("parseCheckpoints(%q), the format of %q: %v", formatted, value, err)
		}
		if again[0].seq != cp.seq || !bytes.Equal(again[0].hash, cp.hash) {
			t.Errorf("parseCheckpoints(%q) = %d:%x, but its format %q parses as %d:%x", value, cp.seq, cp.hash, formatted, again[0].seq, again[0].hash)
		}
	})
}

// audit head prints the head through the service and from the database,
// and its checkpoint line passes audit verify --checkpoint.
func TestAuditHead(t *testing.T) {
	s := startService(t)
	runAdminSteps(t, s, []adminStep{
		{name: "empty chain", args: []string{"audit", "head"}, want: []string{"audit chain empty"}},
	})
	if out, code := s.run(t, strings.NewReader("value"), "secret", "put", "default/app/audited"); code != exitOK {
		t.Fatalf("secret put: exit code %d:\n%s", code, out)
	}

	out, code := s.run(t, nil, "audit", "head", "-o", "json")
	if code != exitOK {
		t.Fatalf("audit head -o json: exit code %d:\n%s", code, out)
	}
	var head store.AuditHead
	if err := json.Unmarshal([]byte(out), &head); err != nil {
		t.Fatalf("audit head -o json output is not JSON: %v\n%s", err, out)
	}
	if head.Seq != 1 {
		t.Errorf("audit head -o json: seq %d, want 1", head.Seq)
	}
	checkpointValue := fmt.Sprintf("%d:%x", head.Seq, head.Hash)

	if out, code := s.run(t, nil, "refvalue", "add", "snp.measurement", strings.Repeat("5d", 48)); code != exitOK {
		t.Fatalf("refvalue add: exit code %d:\n%s", code, out)
	}
	runAdminSteps(t, s, []adminStep{
		{name: "through the service", args: []string{"audit", "head"},
			want: []string{"audit chain head: record 2, hash ", "checkpoint: 2:"}},
		{name: "from the database", args: []string{"audit", "head", "--data-dir", s.dataDir},
			want: []string{"audit chain head: record 2, hash ", "checkpoint: 2:"}},
		{name: "earlier head as checkpoint", args: []string{"audit", "verify", "--data-dir", s.dataDir, "--checkpoint", checkpointValue},
			want: []string{"audit chain intact: 2 records", fmt.Sprintf("checkpoint %x: record 1", head.Hash)}},
		{name: "both database flags", args: []string{"audit", "head", "--data-dir", s.dataDir, "--database-url", "postgres://127.0.0.1/none"},
			exit: exitUsage, want: []string{"use either --data-dir or --database-url"}},
		{name: "invalid output", args: []string{"audit", "head", "-o", "yaml"},
			exit: exitUsage, want: []string{`invalid --output "yaml"`}},
	})

	// The checkpoint line of the text output is a valid --checkpoint.
	out, code = s.run(t, nil, "audit", "head")
	if code != exitOK {
		t.Fatalf("audit head: exit code %d:\n%s", code, out)
	}
	_, line, ok := strings.Cut(out, "checkpoint: ")
	if !ok {
		t.Fatalf("audit head printed no checkpoint line:\n%s", out)
	}
	line, _, _ = strings.Cut(line, "\n")
	runAdminSteps(t, s, []adminStep{
		{name: "printed checkpoint", args: []string{"audit", "verify", "--checkpoint", line},
			want: []string{"audit chain intact: 2 records", ": record 2"}},
	})
}
