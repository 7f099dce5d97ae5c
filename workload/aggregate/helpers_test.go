package aggregate

import (
	"context"
	"crypto/sha512"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/workload"
)

// testMeasurement is the emulated launch measurement of the workload in
// these tests.
var testMeasurement = func() []byte {
	sum := sha512.Sum384([]byte("aggregate test workload"))
	return sum[:]
}()

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newParty returns a party's client certificate and the manifest entry
// that names its key.
func newParty(t testing.TB, name string) (tls.Certificate, Party) {
	t.Helper()
	key, _, err := workload.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := workload.ClientCertificate(key, name)
	if err != nil {
		t.Fatal(err)
	}
	h, err := workload.KeyHash(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return cert, Party{Name: name, KeySHA256: h}
}

func encodeManifest(t testing.TB, m Manifest) []byte {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// deployment is a running workload and what a party needs to reach it.
type deployment struct {
	addr     string
	tee      *workload.TEE
	manifest workload.Digest
}

// startWorkload serves the manifest raw in an emulated TEE on loopback.
func startWorkload(t testing.TB, raw []byte) *deployment {
	t.Helper()
	m, digest, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tee, err := workload.OpenTEE(ctx, digest, workload.TEEOptions{Emulated: true, Measurement: testMeasurement})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, tee, m, digest, quietLogger()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &deployment{addr: ln.Addr().String(), tee: tee, manifest: digest}
}

// client returns a party's client that expects manifest, trusting the
// deployment's development root.
func (d *deployment) client(t testing.TB, cert tls.Certificate, manifest workload.Digest) *Client {
	t.Helper()
	wc, err := workload.NewClient(d.addr, workload.Expect{
		Manifest:    manifest,
		Measurement: testMeasurement,
		Attest:      attest.Options{TrustAnchors: d.tee.TrustAnchors()},
		Appraise:    appraise.Options{AllowEmulated: true},
	}, cert)
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(wc)
}
