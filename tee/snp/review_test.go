package snp

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// reviewPlainRoot returns a self-signed CA certificate named like AMD's
// Milan root that is neither AMD's nor an emulated development root.
func reviewPlainRoot(t *testing.T) *x509.Certificate {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P384())
	tmpl := testcert.Template(1, "ARK-Milan", true, x509.KeyUsageCertSign)
	return testcert.Issue(t, tmpl, nil, &key.PublicKey, key)
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
