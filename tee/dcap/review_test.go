package dcap

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// reviewQuote returns an emulated quote whose report data is reportData,
// with its collateral and the development root as the only trust anchor.
func reviewQuote(t *testing.T, tee string, reportData []byte) (attest.Evidence, attest.Options) {
	t.Helper()
	e, err := NewEmulator(EmulatorOptions{TEE: tee})
	if err != nil {
		t.Fatal(err)
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})
	ev, err := e.Attest(context.Background(), reportData)
	if err != nil {
		t.Fatal(err)
	}
	return *ev, attest.Options{At: time.Now(), Collateral: e.Collateral(), TrustAnchors: anchors}
}

func TestReviewNonceChecked(t *testing.T) {
	for _, tee := range []string{"sgx", "tdx"} {
		t.Run(tee, func(t *testing.T) {
			ev, opts := reviewQuote(t, tee, []byte("fresh nonce"))

			opts.Nonce = []byte("fresh nonce")
			c, err := NewVerifier().Verify(context.Background(), ev, opts)
			if err != nil {
				t.Fatalf("matching nonce: %v", err)
			}
			if !hasCheck(c, "nonce", attest.CheckPassed) {
				t.Errorf("matching nonce: checks %+v lack a passed nonce check", c.Checks)
			}

			opts.Nonce = []byte("other nonce")
			_, err = NewVerifier().Verify(context.Background(), ev, opts)
			if !errors.Is(err, attest.ErrBinding) {
				t.Fatalf("mismatched nonce: error %v, expected an ErrBinding error", err)
			}
		})
	}
}

func hasCheck(c *attest.Claims, name string, result attest.CheckResult) bool {
	for _, ch := range c.Checks {
		if ch.Name == name && ch.Result == result {
			return true
		}
	}
	return false
}

// TestReviewRootCacheFetchedRoot selects roots twice from the same
// certificate, first supplied by the caller and then fetched from an
// upstream: the second selection must not reuse the first.
func TestReviewRootCacheFetchedRoot(t *testing.T) {
	root := reviewPlainRoot(t)
	v := NewVerifier()
	q := collateral.Query{TEE: "sgx"}

	supplied := &collateral.Set{}
	supplied.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: root.Raw, Certificate: root})
	first, err := v.selectRoots(context.Background(), attest.Options{Collateral: supplied}, q, supplied)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.certs) != 1 || !first.certs[0].Equal(root) {
		t.Fatalf("roots %v, expected the supplied root alone", first.certs)
	}

	fetched := &collateral.Set{}
	fetched.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: root.Raw, Certificate: root, Fetched: true})
	second, err := v.selectRoots(context.Background(), attest.Options{Collateral: fetched}, q, fetched)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range second.certs {
		if c.Equal(root) {
			t.Fatal("a root fetched from an upstream was trusted from the cache of an earlier selection")
		}
	}
}

// reviewPlainRoot returns a self-signed CA certificate that is neither
// Intel's nor an emulated development root.
func reviewPlainRoot(t *testing.T) *x509.Certificate {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	tmpl := testcert.Template(1, "caller root", true, x509.KeyUsageCertSign)
	return testcert.Issue(t, tmpl, nil, &key.PublicKey, key)
}

// reviewSource serves a fixed set whatever the query.
type reviewSource struct{ set *collateral.Set }

func (s reviewSource) Collateral(context.Context, collateral.Query) (*collateral.Set, error) {
	return s.set, nil
}

// TestReviewRootsFromFetchedSet selects roots for a set without roots while
// the source would now serve a root: the selection must come from the set
// the verification uses, which is also the one the cache key covers.
func TestReviewRootsFromFetchedSet(t *testing.T) {
	root := reviewPlainRoot(t)
	withRoot := &collateral.Set{}
	withRoot.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: root.Raw, Certificate: root})

	opts := attest.Options{Collateral: reviewSource{withRoot}}
	roots, err := NewVerifier().selectRoots(context.Background(), opts, collateral.Query{TEE: "sgx"}, &collateral.Set{})
	if err != nil {
		t.Fatal(err)
	}
	if len(roots.certs) != 1 || !roots.certs[0].Equal(EmbeddedRoots()[0]) {
		t.Errorf("roots %v, expected the embedded Intel SGX Root CA for a set without roots", roots.certs)
	}
}

// TestReviewQEIdentityWithoutTCBInfo verifies a quote whose collateral
// lacks the TCB Info: the QE Identity that is there must still be checked,
// so that a QE report from another enclave is rejected.
func TestReviewQEIdentityWithoutTCBInfo(t *testing.T) {
	e, err := NewEmulator(EmulatorOptions{TEE: "sgx"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	files, err := e.CollateralFiles(now)
	if err != nil {
		t.Fatal(err)
	}
	delete(files, "tcb_info.json")
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})
	ev, err := e.Attest(context.Background(), []byte("nonce"))
	if err != nil {
		t.Fatal(err)
	}
	verify := func() (*attest.Claims, error) {
		set := &collateral.Set{}
		for name, data := range files {
			set.AddBytes(name, data)
		}
		return NewVerifier().Verify(context.Background(), *ev, attest.Options{At: now, Collateral: set, TrustAnchors: anchors})
	}

	c, err := verify()
	if err != nil {
		t.Fatalf("QE Identity of the quoting enclave: %v", err)
	}
	if !hasCheck(c, checkQEIdentityMatch, attest.CheckPassed) {
		t.Errorf("checks %+v lack a passed %s check", c.Checks, checkQEIdentityMatch)
	}

	id := e.qeIdentity(now.Add(-time.Minute).UTC(), now.AddDate(0, 0, 30).UTC())
	id.MRSigner = strings.Repeat("ab", 32)
	doc, err := e.signedDocument("enclaveIdentity", id)
	if err != nil {
		t.Fatal(err)
	}
	files["qe_identity.json"] = doc
	if _, err := verify(); !errors.Is(err, attest.ErrChain) {
		t.Fatalf("QE Identity of another enclave: error %v, expected an ErrChain error naming MRSIGNER", err)
	}
}
