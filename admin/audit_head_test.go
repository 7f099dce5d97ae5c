package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/store"
)

// GET audit/head returns the stored head, which follows each change, and
// agrees with the head that audit/verify computes.
func TestAuditHeadEndpoint(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		srv, _ := newTestServer(t, Config{APIKey: testKey, Store: s})
		c := &Client{BaseURL: srv.URL, APIKey: testKey}

		head, err := c.AuditHead(ctx)
		if err != nil {
			t.Fatalf("AuditHead of an empty chain: %v", err)
		}
		if head.Seq != 0 {
			t.Errorf("AuditHead of an empty chain: seq %d, want 0", head.Seq)
		}
		if !bytes.Equal(head.Hash, make([]byte, sha256.Size)) {
			t.Errorf("AuditHead of an empty chain: hash %x, want 32 zero bytes", head.Hash)
		}

		for _, path := range []string{"default/key/a", "default/key/b"} {
			if _, err := c.PutSecret(ctx, path, []byte("value")); err != nil {
				t.Fatalf("PutSecret %s: %v", path, err)
			}
		}
		head, err = c.AuditHead(ctx)
		if err != nil {
			t.Fatalf("AuditHead: %v", err)
		}
		if head.Seq != 2 {
			t.Errorf("AuditHead after two puts: seq %d, want 2", head.Seq)
		}
		v, err := c.VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("VerifyAudit: %v", err)
		}
		if !bytes.Equal(head.Hash, v.Head) {
			t.Errorf("AuditHead hash %x, VerifyAudit head %x", head.Hash, v.Head)
		}

		// Reading the head is no change, so it appends no record.
		again, err := c.AuditHead(ctx)
		if err != nil {
			t.Fatalf("AuditHead: %v", err)
		}
		if again.Seq != head.Seq {
			t.Errorf("AuditHead moved from %d to %d by reading it", head.Seq, again.Seq)
		}
	})
}

// audit/head serves only authenticated requests without query parameters,
// like its neighbours, and returns seq and hash (hex) in JSON.
func TestAuditHeadRequests(t *testing.T) {
	srv, _ := newTestServer(t, Config{APIKey: testKey})

	status, body := sendWithToken(t, srv, http.MethodGet, PathPrefix+"audit/head", "", nil)
	if status != http.StatusUnauthorized {
		t.Errorf("GET audit/head without credentials: status %d, want 401; body %s", status, body)
	}
	status, body = sendWithToken(t, srv, http.MethodGet, PathPrefix+"audit/head", "wrong-key-0123456789abcdef", nil)
	if status != http.StatusUnauthorized {
		t.Errorf("GET audit/head with a wrong key: status %d, want 401; body %s", status, body)
	}

	status, body = sendWithToken(t, srv, http.MethodGet, PathPrefix+"audit/head?seq=1", testKey, nil)
	if status != http.StatusBadRequest {
		t.Errorf("GET audit/head?seq=1: status %d, want 400; body %s", status, body)
	}
	if !strings.Contains(string(body), `unknown query parameter \"seq\"`) {
		t.Errorf("GET audit/head?seq=1: body %s does not name the parameter", body)
	}

	status, body = sendWithToken(t, srv, http.MethodGet, PathPrefix+"audit/head", testKey, nil)
	if status != http.StatusOK {
		t.Fatalf("GET audit/head: status %d, want 200; body %s", status, body)
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("GET audit/head: body %s is not JSON: %v", body, err)
	}
	if fields["seq"] != float64(0) {
		t.Errorf("GET audit/head: seq %v, want 0", fields["seq"])
	}
	if fields["hash"] != strings.Repeat("00", sha256.Size) {
		t.Errorf("GET audit/head: hash %v, want 64 zeros", fields["hash"])
	}
	if len(fields) != 2 {
		t.Errorf("GET audit/head: body %s has %d members, want seq and hash", body, len(fields))
	}

	// A POST is a rejected change, which the service records, so it
	// comes after the read of the empty chain's head.
	status, body = sendWithToken(t, srv, http.MethodPost, PathPrefix+"audit/head", testKey, nil)
	if status != http.StatusMethodNotAllowed && status != http.StatusNotFound {
		t.Errorf("POST audit/head: status %d, want 405 or 404; body %s", status, body)
	}
}
