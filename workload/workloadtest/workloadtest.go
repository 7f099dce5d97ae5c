// Package workloadtest contains the test set-up that the workload
// packages share: party keys, emulated TEEs, serving a workload on
// loopback, the requirements a party checks, and a key broker.
package workloadtest

import (
	"context"
	"crypto/sha512"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/workload"
)

// QuietLog returns a logger that discards everything.
func QuietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Measurement returns SHA-384 of label, a stand-in launch measurement of
// an emulated workload build.
func Measurement(label string) []byte {
	sum := sha512.Sum384([]byte(label))
	return sum[:]
}

// NewParty generates a party key and returns its client certificate and
// the manifest entry that names the key.
func NewParty(t testing.TB, name string) (tls.Certificate, workload.ManifestParty) {
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
	return cert, workload.ManifestParty{Name: name, KeySHA256: h}
}

// OpenEmulatedTEE opens an emulated SEV-SNP TEE with the launch
// measurement and the manifest digest as HOST_DATA.
func OpenEmulatedTEE(t testing.TB, manifest workload.Digest, measurement []byte) *workload.TEE {
	t.Helper()
	tee, err := workload.OpenTEE(context.Background(), manifest, workload.TEEOptions{Emulated: true, Measurement: measurement})
	if err != nil {
		t.Fatal(err)
	}
	return tee
}

// Serve listens on 127.0.0.1, runs serve in the background until the test
// ends, and returns the listener's address. A serve error fails the test.
func Serve(t testing.TB, serve func(ctx context.Context, ln net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// Expect returns the requirements of a party that trusts tee's
// development root, accepts emulated TEEs, and expects the manifest
// digest and the launch measurement.
func Expect(tee *workload.TEE, manifest workload.Digest, measurement []byte) workload.Expect {
	return workload.Expect{
		Manifest:    manifest,
		Measurement: measurement,
		Attest:      attest.Options{TrustAnchors: tee.TrustAnchors()},
		Appraise:    appraise.Options{AllowEmulated: true},
	}
}

// NewClient returns a workload client at addr that presents cert and
// checks expect.
func NewClient(t testing.TB, addr string, expect workload.Expect, cert tls.Certificate) *workload.Client {
	t.Helper()
	c, err := workload.NewClient(addr, expect, cert)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
