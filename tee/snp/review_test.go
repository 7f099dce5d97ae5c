package snp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"github.com/cloister-dev/cloister/internal/testcert"
	"math/big"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// reviewPlainRoot returns a self-signed CA certificate named like AMD's
// Milan root that is neither AMD's nor an emulated development root.
func reviewPlainRoot(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ARK-Milan"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	return testcert.Issue(t, tmpl, tmpl, &key.PublicKey, key)
}

// TestReviewRootCacheFetchedRoot selects roots twice from the same
// certificate, first supplied by the caller and then fetched from an
// upstream: the second selection must not reuse the first.
func TestReviewRootCacheFetchedRoot(t *testing.T) {
	root := reviewPlainRoot(t)
	var cache rootsCache
	q := collateral.Query{TEE: "snp"}

	supplied := &collateral.Set{}
	supplied.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: root.Raw, Certificate: root})
	first, err := cache.roots(context.Background(), attest.Options{}, supplied, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || !first[0].Equal(root) {
		t.Fatalf("%d roots, expected the supplied root alone", len(first))
	}

	fetched := &collateral.Set{}
	fetched.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: root.Raw, Certificate: root, Fetched: true})
	second, err := cache.roots(context.Background(), attest.Options{}, fetched, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range second {
		if c.Equal(root) {
			t.Fatal("a root fetched from an upstream was trusted from the cache of an earlier selection")
		}
	}
	if len(second) != len(EmbeddedRoots()) {
		t.Errorf("%d roots, expected the %d embedded AMD roots", len(second), len(EmbeddedRoots()))
	}
}
