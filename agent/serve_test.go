package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/server"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/tee/snp"
)

// startKeyBroker runs Cloister's attestation service on loopback with an
// SQLite store holding the secrets, and the emulator's measurement as the
// only reference value.
func startKeyBroker(t *testing.T, e *snp.Emulator, secrets map[string][]byte) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(newKeyBroker(t, e, secrets))
	t.Cleanup(ts.Close)
	return ts
}

// newKeyBroker returns the handler of the service that startKeyBroker
// runs.
func newKeyBroker(t *testing.T, e *snp.Emulator, secrets map[string][]byte) http.Handler {
	t.Helper()
	ctx := context.Background()
	mk := make([]byte, store.MasterKeySize)
	rand.Read(mk)
	key, err := store.NewMasterKey(mk)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir(), MasterKey: key, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	ev, err := e.Attest(ctx, make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	report, err := snp.ParseReport(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: hex.EncodeToString(report.Measurement[:])}); err != nil {
		t.Fatal(err)
	}
	for path, value := range secrets {
		if _, err := st.PutSecret(ctx, path, value); err != nil {
			t.Fatal(err)
		}
	}

	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "emulator", Raw: e.Root().Raw, Certificate: e.Root()})
	signingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, SigningKey: signingKey, AllowEmulated: true, TrustAnchors: anchors, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}

// The whole path: the agent attests to the attestation service through
// the KBS protocol, the released secret reaches an unmodified net/http
// workload, and a client reaches the workload only after verifying the
// agent's RA-TLS certificate and fresh evidence.
func TestServeAgentConnect(t *testing.T) {
	e := mustEmulator(t)
	ts := startKeyBroker(t, e, map[string][]byte{
		"default/db/password": []byte("from-the-broker"),
		"default/api/token":   []byte("token-from-the-broker"),
	})
	jar, _ := cookiejar.New(nil)
	client := &kbs.Client{URL: ts.URL, Attester: e, HTTPClient: &http.Client{Jar: jar}}

	run := startAgentWith(t, e, client, nil, RestartNever)
	body := waitGet(t, run.listen, clientVerifier(t, e, appraise.Options{}))
	if want := "file=from-the-broker env=token-from-the-broker"; body != want {
		t.Errorf("workload responded %q, want %q", body, want)
	}
}

// A TEE whose measurement the service does not know gets no secret, so
// the agent never starts the workload.
func TestServeRejectsUnknownWorkload(t *testing.T) {
	requireTmpfs(t)
	known := mustEmulator(t)
	unknown := namedEmulator(t, "unknown", snp.EmulatorOptions{Measurement: make([]byte, 48)})
	ts := startKeyBroker(t, known, map[string][]byte{"default/db/password": []byte("x")})
	// The service trusts only the known emulator's root, so the unknown
	// one fails on its chain as well as on its measurement.
	jar, _ := cookiejar.New(nil)
	started := false
	err := Run(context.Background(), Config{
		Attester: unknown,
		Source:   &kbs.Client{URL: ts.URL, Attester: unknown, HTTPClient: &http.Client{Jar: jar}},
		Secrets:  []Secret{{Path: "default/db/password", File: "db-password"}},
		Workload: Supervisor{Command: []string{"true"}, Started: func(int) { started = true }},
	})
	if err == nil {
		t.Fatal("an unknown TEE received the secret")
	}
	if started {
		t.Errorf("the workload started without its secret")
	}
	t.Logf("rejection: %v", err)
}
