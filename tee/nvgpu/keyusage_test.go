package nvgpu

import (
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// testGPUWithUsages is newTestGPU with the given key usages and with the
// root's CA flag set by rootCA.
func testGPUWithUsages(t *testing.T, rootUsage, interUsage, leafUsage x509.KeyUsage, rootCA bool) *testGPU {
	t.Helper()
	notBefore, notAfter := testTime.Add(-time.Hour), testTime.Add(24*time.Hour)
	rootKey, interKey, leafKey := testcert.ECDSAKey(t, elliptic.P384()), testcert.ECDSAKey(t, elliptic.P384()), testcert.ECDSAKey(t, elliptic.P384())
	rootTmpl := testcert.CA(1, "Test Device Identity CA", notBefore, notAfter, rootUsage)
	rootTmpl.IsCA, rootTmpl.BasicConstraintsValid = rootCA, rootCA
	root := testcert.Issue(t, rootTmpl, nil, &rootKey.PublicKey, rootKey)
	inter := testcert.Issue(t, testcert.CA(2, "Test GH100 Identity", notBefore, notAfter, interUsage), root, &interKey.PublicKey, rootKey)
	fwid := testFWID(0xf1)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "GH100 A01 GSP FMC LF"},
		NotBefore: testTime.Add(-time.Hour), NotAfter: testTime.Add(3 * time.Hour),
		KeyUsage:        leafUsage,
		ExtraExtensions: []pkix.Extension{{Id: oidTCGDICETcbInfo, Value: nvidiaTcbInfo(t, fwid)}},
	}
	leaf := testcert.Issue(t, leafTmpl, inter, &leafKey.PublicKey, interKey)
	return &testGPU{root: root, intermediate: inter, leaf: leaf, leafKey: leafKey, rootKey: rootKey, interKey: interKey, fwid: fwid}
}

// keyUsageCase is a certificate chain whose root, intermediate and leaf
// carry the given key usages, and the rejection it should get.
type keyUsageCase struct {
	name       string
	root       x509.KeyUsage
	inter      x509.KeyUsage
	leaf       x509.KeyUsage
	rootNotCA  bool
	wants      []string // empty when accepted
	errorField string
}

// checkRejected checks that err is an ErrChain *attest.Error on the
// case's field whose message contains each of the case's wants.
func (tt keyUsageCase) checkRejected(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error %v, want ErrChain", err)
	}
	var ae *attest.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *attest.Error", err)
	}
	if ae.Field != tt.errorField {
		t.Errorf("field %q, want %q", ae.Field, tt.errorField)
	}
	for _, want := range tt.wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestVerifyDeviceKeyUsage(t *testing.T) {
	const (
		sign   = x509.KeyUsageDigitalSignature
		issuer = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	)
	tests := []keyUsageCase{
		{name: "as NVIDIA issues them", root: issuer, inter: x509.KeyUsageCertSign, leaf: sign},
		{name: "leaf with more usages", root: issuer, inter: issuer, leaf: sign | x509.KeyUsageKeyAgreement},
		{name: "leaf without digitalSignature", root: issuer, inter: issuer, leaf: x509.KeyUsageKeyEncipherment,
			wants: []string{"GH100 A01 GSP FMC LF", "value keyEncipherment, expected digitalSignature"}, errorField: "device certificate key usage"},
		{name: "leaf without key usage", root: issuer, inter: issuer, leaf: 0,
			wants: []string{"value none, expected digitalSignature"}, errorField: "device certificate key usage"},
		{name: "intermediate without key usage", root: issuer, inter: 0, leaf: sign,
			wants: []string{"Test GH100 Identity", "value none, expected keyCertSign"}, errorField: "device certificate key usage"},
		{name: "root without key usage", root: 0, inter: issuer, leaf: sign,
			wants: []string{"Test Device Identity CA", "value none, expected keyCertSign"}, errorField: "device certificate key usage"},
		// crypto/x509 rejects these while it builds the chain.
		{name: "intermediate without keyCertSign", root: issuer, inter: x509.KeyUsageCRLSign, leaf: sign,
			wants: []string{"Test GH100 Identity"}, errorField: "certificate chain"},
		{name: "root without keyCertSign", root: sign, inter: issuer, leaf: sign,
			wants: []string{"Test Device Identity CA"}, errorField: "certificate chain"},
		{name: "root not a CA", root: issuer, inter: issuer, leaf: sign, rootNotCA: true,
			wants: []string{"Test Device Identity CA"}, errorField: "certificate chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := testGPUWithUsages(t, tt.root, tt.inter, tt.leaf, !tt.rootNotCA)
			_, err := verifyHex(t, g.build(t, g.parts(testNonce(7))), g.options(t))
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("error %v, want acceptance", err)
				}
				return
			}
			tt.checkRejected(t, err)
		})
	}
}

// rimSignerWithUsages is newRIMSigner with the given key usages and with
// the root's CA flag set by rootCA.
func rimSignerWithUsages(t *testing.T, rootUsage, interUsage, leafUsage x509.KeyUsage, rootCA bool) *rimSigner {
	t.Helper()
	notBefore, notAfter := testTime.Add(-24*time.Hour), testTime.Add(365*24*time.Hour)
	rootKey, interKey, leafKey := testcert.ECDSAKey(t, elliptic.P384()), testcert.ECDSAKey(t, elliptic.P384()), testcert.ECDSAKey(t, elliptic.P384())
	rootTmpl := testcert.CA(11, "Test CoRIM signing Root CA", notBefore, notAfter, rootUsage)
	rootTmpl.IsCA, rootTmpl.BasicConstraintsValid = rootCA, rootCA
	root := testcert.Issue(t, rootTmpl, nil, &rootKey.PublicKey, rootKey)
	inter := testcert.Issue(t, testcert.CA(12, "Test Reference Value GH100 CA", notBefore, notAfter, interUsage), root, &interKey.PublicKey, rootKey)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(13), Subject: pkix.Name{CommonName: "Test RIM Signer"},
		NotBefore: notBefore, NotAfter: testTime.Add(time.Hour), KeyUsage: leafUsage,
	}
	leaf := testcert.Issue(t, leafTmpl, inter, &leafKey.PublicKey, interKey)
	return &rimSigner{root: root, intermediate: inter, leaf: leaf, key: leafKey, intermediateKey: interKey, rootKey: rootKey}
}

func TestVerifyRIMKeyUsage(t *testing.T) {
	const (
		sign   = x509.KeyUsageDigitalSignature
		issuer = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	)
	tests := []keyUsageCase{
		{name: "as NVIDIA issues them", root: issuer, inter: issuer, leaf: sign},
		{name: "leaf with more usages", root: issuer, inter: issuer, leaf: sign | x509.KeyUsageContentCommitment},
		{name: "leaf without digitalSignature", root: issuer, inter: issuer, leaf: x509.KeyUsageKeyEncipherment,
			wants: []string{"Test RIM Signer", "may not sign RIMs", "value keyEncipherment, expected digitalSignature"}, errorField: "Signature/KeyInfo/X509Data"},
		{name: "leaf without key usage", root: issuer, inter: issuer, leaf: 0,
			wants: []string{"Test RIM Signer", "value none, expected digitalSignature"}, errorField: "Signature/KeyInfo/X509Data"},
		{name: "intermediate without key usage", root: issuer, inter: 0, leaf: sign,
			wants: []string{"Test Reference Value GH100 CA", "value none, expected keyCertSign"}, errorField: "Signature/KeyInfo/X509Data"},
		{name: "root without key usage", root: 0, inter: issuer, leaf: sign,
			wants: []string{"Test CoRIM signing Root CA", "value none, expected keyCertSign"}, errorField: "Signature/KeyInfo/X509Data"},
		// crypto/x509 rejects these while it builds the chain.
		{name: "intermediate without keyCertSign", root: issuer, inter: x509.KeyUsageCRLSign, leaf: sign,
			wants: []string{"Test Reference Value GH100 CA"}, errorField: "certificate chain"},
		{name: "root not a CA", root: issuer, inter: issuer, leaf: sign, rootNotCA: true,
			wants: []string{"Test CoRIM signing Root CA"}, errorField: "certificate chain"},
	}
	driver, _ := matchingRIMs()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := rimSignerWithUsages(t, tt.root, tt.inter, tt.leaf, !tt.rootNotCA)
			rim, err := verifyRIM(s.sign(t, driver.xml(), true), []*x509.Certificate{s.root}, testTime)
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("error %v, want acceptance", err)
				}
				if len(rim.chain) != 3 {
					t.Errorf("chain of %d certificates, want 3", len(rim.chain))
				}
				return
			}
			tt.checkRejected(t, err)
		})
	}
}
