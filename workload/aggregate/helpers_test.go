package aggregate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/ratls"
	"github.com/cloister-dev/cloister/tee/snp"
)

var (
	emulatorMu sync.Mutex
	emulators  = map[[32]byte]*snp.Emulator{}
)

// emulatorFor returns an emulated SEV-SNP guest whose HOST_DATA is
// hostData, one per value, because generating the development chain
// takes seconds.
func emulatorFor(t testing.TB, hostData [32]byte) *snp.Emulator {
	t.Helper()
	emulatorMu.Lock()
	defer emulatorMu.Unlock()
	if e, ok := emulators[hostData]; ok {
		return e
	}
	e, err := snp.NewEmulator(snp.EmulatorOptions{HostData: hostData[:]})
	if err != nil {
		t.Fatal(err)
	}
	emulators[hostData] = e
	return e
}

// partyCert returns a self-signed client certificate and the party ID it
// stands for.
func partyCert(t testing.TB) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "party"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, SPKIHash(leaf.RawSubjectPublicKeyInfo)
}

// verifierFor trusts e's development root and requires HOST_DATA to be
// hostData, as a party does before it sends an update.
func verifierFor(t testing.TB, e *snp.Emulator, hostData [32]byte) *ratls.Verifier {
	t.Helper()
	anchors := &collateral.Set{}
	if n, reason := anchors.AddBytes("emulator root", e.Root().Raw); n != 1 {
		t.Fatalf("adding the emulator root: %s", reason)
	}
	return ratls.NewVerifier(ratls.VerifyOptions{
		Attest:   attest.Options{TrustAnchors: anchors},
		Appraise: appraise.Options{AllowEmulated: true, HostData: hostData[:]},
	})
}

// startWorkload serves a new Aggregator for cfg over RA-TLS on loopback
// and returns its URL.
func startWorkload(t testing.TB, cfg Config) (string, *snp.Emulator) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	digest := cfg.Digest()
	e := emulatorFor(t, digest)
	if err := CheckHostData(ctx, e, digest); err != nil {
		t.Fatal(err)
	}
	agg, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ratls.NewCertSource(ctx, e, ratls.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, certs, NewHandler(agg, quiet), quiet) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "https://" + ln.Addr().String(), e
}
