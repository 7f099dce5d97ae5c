package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// After two guests fetch a secret, audit ls --token-id lists the
// attestation and the release of one guest's token and nothing of the
// other's.
func TestAuditListByTokenID(t *testing.T) {
	guest := newEmulatedGuest(t, t.TempDir())
	s := startService(t, "--allow-emulated", "--trust-anchor", guest.trustAnchor)
	if out, code := s.run(t, nil, "refvalue", "add", "snp.measurement", guest.measurement); code != exitOK {
		t.Fatalf("refvalue add: exit code %d:\n%s", code, out)
	}
	if out, code := s.run(t, strings.NewReader("the database password"), "secret", "put", "default/key/db"); code != exitOK {
		t.Fatalf("secret put: exit code %d:\n%s", code, out)
	}

	var ids []string
	for range 2 {
		c := &kbs.Client{URL: s.url, Attester: guest.emulator, HTTPClient: &http.Client{Timeout: 30 * time.Second, Jar: newJar(t)}}
		token, err := c.Attest(context.Background())
		if err != nil {
			t.Fatalf("Attest: %v", err)
		}
		if _, err := c.Resource(context.Background(), "default/key/db"); err != nil {
			t.Fatalf("Resource: %v", err)
		}
		ids = append(ids, strings.TrimPrefix(tokenReference(t, token), "token:"))
	}
	mine, other := ids[0], ids[1]

	runAdminSteps(t, s, []adminStep{
		{name: "ls shows token IDs", args: []string{"audit", "ls"},
			want: []string{"TOKEN ID", "session:", "token:" + mine, "token:" + other}},
		{name: "ls by token ID", args: []string{"audit", "ls", "--token-id", mine},
			want: []string{"attest", "session:", "release", "token:" + mine, "default/key/db"}, notWant: []string{other, "admin"}},
		{name: "ls by requester value", args: []string{"audit", "ls", "--token-id", "token:" + mine},
			want: []string{"attest", "release", "token:" + mine}, notWant: []string{other}},
		{name: "ls by token ID and action", args: []string{"audit", "ls", "--token-id", mine, "--action", "attest"},
			want: []string{"attest", "session:", mine}, notWant: []string{"release", other}},
	})

	out, code := s.run(t, nil, "audit", "ls", "--token-id", mine, "-o", "json")
	if code != exitOK {
		t.Fatalf("audit ls -o json: exit code %d:\n%s", code, out)
	}
	var records []store.AuditRecord
	if err := json.Unmarshal([]byte(out), &records); err != nil {
		t.Fatalf("audit ls -o json output is not JSON: %v\n%s", err, out)
	}
	if len(records) != 2 {
		t.Fatalf("audit ls --token-id -o json listed %d records, want attest and release: %s", len(records), out)
	}
	if records[0].Action != store.AuditAttest || records[0].TokenID != mine {
		t.Errorf("first record: action %s, token ID %q; want attest, %s", records[0].Action, records[0].TokenID, mine)
	}
	if records[1].Action != store.AuditRelease || records[1].Requester != "token:"+records[0].TokenID {
		t.Errorf("second record: action %s, requester %q; want release by token:%s", records[1].Action, records[1].Requester, records[0].TokenID)
	}
	if !strings.Contains(out, `"token_id": "`+mine+`"`) {
		t.Errorf("audit ls -o json does not name the field token_id:\n%s", out)
	}
}

// --token-id takes a jti in either case, with or without the token: of
// the REQUESTER column, and rejects anything else before any request to
// the service.
func TestParseTokenID(t *testing.T) {
	const id = "070357810dec2be68b6927cae6ddb70f"
	tests := []struct {
		in, want, wantErr string
	}{
		{in: id, want: id},
		{in: "token:" + id, want: id},
		{in: strings.ToUpper(id), want: id},
		{in: "", wantErr: "invalid --token-id"},
		{in: "token:", wantErr: "invalid --token-id"},
		{in: "foo bar", wantErr: "invalid --token-id"},
		{in: id + "00", wantErr: "invalid --token-id"},
		{in: "session:03394d9d1920dee3", wantErr: "names a session"},
	}
	for _, tt := range tests {
		got, err := parseTokenID(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("parseTokenID(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseTokenID(%q) error %v, want one containing %q", tt.in, err, tt.wantErr)
		}
	}
}
