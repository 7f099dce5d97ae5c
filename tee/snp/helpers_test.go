package snp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// Tests do not need AMD's key size, and RSA-4096 generation dominates
// their run time.
func init() { rsaKeyBits = 2048 }

// Emulators are slow to create (two RSA-4096 keys), so tests share one per
// configuration.
var (
	emulatorsMu sync.Mutex
	emulators   = map[string]*Emulator{}
)

func sharedEmulator(t testing.TB, opts EmulatorOptions) *Emulator {
	t.Helper()
	key := opts.Product + "/" + opts.SigningKey
	if opts.Debug {
		key += "/debug"
	}
	emulatorsMu.Lock()
	defer emulatorsMu.Unlock()
	if e, ok := emulators[key]; ok {
		return e
	}
	e, err := NewEmulator(opts)
	if err != nil {
		t.Fatalf("NewEmulator(%+v): %v", opts, err)
	}
	emulators[key] = e
	return e
}

// anchors returns a trust-anchor set holding the emulator's root.
func anchors(e *Emulator) *collateral.Set {
	s := &collateral.Set{}
	s.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})
	return s
}

// checkVerifyError fails t unless err is of kind and its message contains
// contains.
func checkVerifyError(t *testing.T, err, kind error, contains string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("Verify error = %v, want kind %v", err, kind)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Errorf("Verify error = %q, want it to contain %q", err, contains)
	}
}

// emulatedOptions returns options that verify e's reports.
func emulatedOptions(e *Emulator) attest.Options {
	return attest.Options{Collateral: e.Collateral(), TrustAnchors: anchors(e)}
}

// signedReport builds an emulated report, lets edit change it, and signs it
// with e's endorsement key, returning the encoded report.
func signedReport(t testing.TB, e *Emulator, edit func(r *Report)) []byte {
	t.Helper()
	r := e.report([]byte("cloister test"))
	if edit != nil {
		edit(r)
	}
	if err := e.sign(r); err != nil {
		t.Fatal(err)
	}
	return r.marshal()
}

// verify runs the verifier on a report with opts.
func verify(t testing.TB, data []byte, opts attest.Options) (*attest.Claims, error) {
	t.Helper()
	return (&Verifier{}).Verify(context.Background(), attest.Evidence{Format: "snp", Data: data}, opts)
}

// crlBy returns a CRL signed by e's ARK listing serials.
func crlBy(t testing.TB, e *Emulator, thisUpdate, nextUpdate time.Time, serials ...*big.Int) *x509.RevocationList {
	t.Helper()
	return crlSignedBy(t, e.ark, e.arkKey, thisUpdate, nextUpdate, serials...)
}

// crlSignedBy returns a CRL of issuer, signed with key, listing serials.
func crlSignedBy(t testing.TB, issuer *x509.Certificate, key crypto.Signer, thisUpdate, nextUpdate time.Time, serials ...*big.Int) *x509.RevocationList {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: thisUpdate})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
		RevokedCertificateEntries: entries, SignatureAlgorithm: x509.SHA384WithRSAPSS,
	}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// withItems returns e's collateral plus extra certificates and CRLs.
func withItems(e *Emulator, certs []*x509.Certificate, crls []*x509.RevocationList) *collateral.Set {
	s := &collateral.Set{}
	s.Merge(e.Collateral())
	for _, c := range certs {
		s.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: c.Raw, Certificate: c})
	}
	for _, c := range crls {
		s.Add(&collateral.Item{Kind: collateral.KindCRL, Raw: c.Raw, CRL: c})
	}
	return s
}

// issueLeaf issues a certificate from e's ASK with the given subject and
// extensions of e's leaf, for tests that need a wrong-kind endorsement.
func issueLeaf(t testing.TB, e *Emulator, cn string, exts []pkix.Extension) *x509.Certificate {
	t.Helper()
	tmpl := e.leafTemplate(time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	tmpl.Subject.CommonName = cn
	if exts != nil {
		tmpl.ExtraExtensions = exts
	}
	return testcert.Issue(t, tmpl, e.ask, &e.leafKey.PublicKey, e.askKey)
}
