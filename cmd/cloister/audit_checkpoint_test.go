package main

import (
	"encoding/hex"
	"encoding/json"
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
		{name: "checkpoint not hex", args: []string{"audit", "verify", "--checkpoint", "head"}, exit: exitUsage,
			want: []string{`invalid --checkpoint "head"`, "64 hex digits"}},
		{name: "checkpoint too short", args: []string{"audit", "verify", "--checkpoint", "abcd"}, exit: exitUsage,
			want: []string{`invalid --checkpoint "abcd"`}},
	})
}
