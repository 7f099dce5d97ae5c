package kbs

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/dcap"
)

// unreadableLogAttester is an emulated TDX guest whose CC event log cannot
// be read, as for an agent that does not run as root.
type unreadableLogAttester struct{ *dcap.Emulator }

func (unreadableLogAttester) EventLog(context.Context) ([]byte, error) {
	return nil, fmt.Errorf("tdx: reading the CC event log: open %s: %w", dcap.CCELPath, fs.ErrPermission)
}

// recordingServer starts a loopback KBS stub that returns a token for
// every /attest. evidence decodes the primary evidence of each /attest
// body as the server does for tee.
func recordingServer(t *testing.T, tee string) (url string, evidence func() []attest.Evidence) {
	t.Helper()
	handler, bodies := recordingKBSHandler()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL, func() []attest.Evidence {
		var out []attest.Evidence
		for _, body := range bodies() {
			a, err := ParseAttestation(body)
			if err != nil {
				t.Fatalf("ParseAttestation: %v", err)
			}
			ev, err := DecodeEvidence(tee, a.TEEEvidence.PrimaryEvidence)
			if err != nil {
				t.Fatalf("DecodeEvidence: %v", err)
			}
			out = append(out, ev)
		}
		return out
	}
}

// The client sends the TDX guest's CC event log in the envelope's aux when
// the attester can read it, and attests without it, with one warning,
// when it cannot.
func TestClientSendsEventLog(t *testing.T) {
	tdx, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	emulatedLog, err := tdx.EventLog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		attester attest.Attester
		wantAux  []byte
		wantLogs []string
	}{
		{name: "readable log", attester: tdx, wantAux: emulatedLog},
		{name: "unreadable log", attester: unreadableLogAttester{tdx},
			wantLogs: []string{"level=WARN", "level=DEBUG"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, evidence := recordingServer(t, "tdx")
			var logs bytes.Buffer
			c := &Client{URL: url, Attester: tc.attester, TEE: "tdx", Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			for range 2 {
				if _, err := c.Attest(context.Background()); err != nil {
					t.Fatalf("Attest: %v", err)
				}
			}

			got := evidence()
			if len(got) != 2 {
				t.Fatalf("the server decoded %d attestations, expected 2", len(got))
			}
			for i, ev := range got {
				if !bytes.Equal(ev.Aux, tc.wantAux) {
					t.Errorf("attestation %d: aux has %d bytes, expected %d", i+1, len(ev.Aux), len(tc.wantAux))
				}
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(tc.wantLogs) == 0 && logs.Len() > 0 {
				t.Errorf("unexpected log output:\n%s", logs.String())
			}
			if len(tc.wantLogs) > 0 && len(lines) != len(tc.wantLogs) {
				t.Fatalf("%d log lines, expected %d:\n%s", len(lines), len(tc.wantLogs), logs.String())
			}
			for i, level := range tc.wantLogs {
				if !strings.Contains(lines[i], level) || !strings.Contains(lines[i], "permission denied") {
					t.Errorf("log line %d is %q, expected %s with the error", i+1, lines[i], level)
				}
			}
		})
	}
}

// An SGX quote carries no event log, because the verifier rejects one.
func TestClientSendsNoSGXEventLog(t *testing.T) {
	sgx, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "sgx"})
	if err != nil {
		t.Fatal(err)
	}
	url, evidence := recordingServer(t, "sgx")
	c := &Client{URL: url, Attester: sgx}
	if _, err := c.Attest(context.Background()); err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if got := evidence(); len(got) != 1 || got[0].Aux != nil {
		t.Errorf("evidence %+v, expected one quote without aux", got)
	}
}

// A canceled context ends the attestation instead of a warning.
func TestClientEventLogCanceled(t *testing.T) {
	tdx, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	url, _ := recordingServer(t, "tdx")
	c := &Client{URL: url, Attester: cancelingAttester{unreadableLogAttester{tdx}, cancel}, TEE: "tdx"}
	var logs bytes.Buffer
	c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := c.Attest(ctx); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("Attest error %v, expected context canceled", err)
	}
	if logs.Len() > 0 {
		t.Errorf("unexpected log output:\n%s", logs.String())
	}
}

// cancelingAttester cancels the attestation's context while it reads the
// event log.
type cancelingAttester struct {
	unreadableLogAttester
	cancel context.CancelFunc
}

func (a cancelingAttester) EventLog(ctx context.Context) ([]byte, error) {
	a.cancel()
	return nil, ctx.Err()
}
