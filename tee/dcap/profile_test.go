package dcap

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// Common names of the test hierarchy that replaces the emulator's root,
// PCK CA and TCB signing certificate in TestIntelProfileChecked.
const (
	profileRootCN      = "Cloister test Intel SGX Root CA"
	profilePCKCACN     = "Cloister test Intel SGX PCK Platform CA"
	profilePCKCN       = "Cloister test Intel SGX PCK Certificate"
	profileTCBSignerCN = "Cloister test Intel SGX TCB Signing"
)

// profileCase sets the keys and signature algorithms of a test hierarchy.
// A nil key is a new P-256 key, or the emulator's key for the TCB signing
// certificate, and a zero algorithm is the one Go picks for the key.
type profileCase struct {
	name                                    string
	rootKey, pckCAKey, tcbSignerKey         crypto.Signer
	rootAlg, pckCAAlg, pckAlg, tcbSignerAlg x509.SignatureAlgorithm
	pckCRLAlg, rootCRLAlg                   x509.SignatureAlgorithm
	// withoutTCBInfo drops the TCB Info, so that the QE Identity is the
	// only document whose signing chain is verified.
	withoutTCBInfo bool
	// kind is nil when the quote must verify, and want lists what the
	// error must name otherwise.
	kind error
	want []string
}

// issueSigned issues template for pub under parent, signed by parentKey
// with alg, or self-signed when parent is nil.
func issueSigned(t *testing.T, template, parent *x509.Certificate, pub any, parentKey crypto.Signer, alg x509.SignatureAlgorithm) *x509.Certificate {
	t.Helper()
	template.SignatureAlgorithm = alg
	return testcert.Issue(t, template, parent, pub, parentKey)
}

func issueSignedCRL(t *testing.T, issuer *x509.Certificate, key crypto.Signer, alg x509.SignatureAlgorithm, thisUpdate, nextUpdate time.Time) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		SignatureAlgorithm: alg, Number: big.NewInt(thisUpdate.Unix()), ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
	}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newP256Key(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// verifyProfileCase replaces the emulator's root, PCK CA, PCK certificate,
// TCB signing certificate and CRLs with ones issued as tc sets, passes the
// test root as the only trust anchor and verifies a quote. The PCK and TCB
// signing certificates keep the emulator's keys, so that the QE report and
// the TCB Info and QE Identity signatures stay valid.
func verifyProfileCase(t *testing.T, tee string, tc profileCase) error {
	t.Helper()
	f := newFixture(t, tee)
	notBefore, notAfter := f.now.Add(-time.Hour), f.now.Add(time.Hour)
	rootKey, pckCAKey := tc.rootKey, tc.pckCAKey
	if rootKey == nil {
		rootKey = newP256Key(t)
	}
	if pckCAKey == nil {
		pckCAKey = newP256Key(t)
	}
	var tcbSignerKey crypto.Signer = f.e.tcbSignerKey
	if tc.tcbSignerKey != nil {
		tcbSignerKey = tc.tcbSignerKey
	}

	root := issueSigned(t, caTemplate(profileRootCN, 1, notBefore, notAfter), nil, rootKey.Public(), rootKey, tc.rootAlg)
	pckCA := issueSigned(t, caTemplate(profilePCKCACN, 2, notBefore, notAfter), root, pckCAKey.Public(), rootKey, tc.pckCAAlg)
	tcbSigner := issueSigned(t, leafTemplate(profileTCBSignerCN, 3, notBefore, notAfter), root, tcbSignerKey.Public(), rootKey, tc.tcbSignerAlg)
	template := leafTemplate(profilePCKCN, 4, notBefore, notAfter)
	for _, ext := range f.e.pck.Extensions {
		if ext.Id.Equal(OIDSGXExtensions) {
			template.ExtraExtensions = append(template.ExtraExtensions, ext)
		}
	}
	pck := issueSigned(t, template, pckCA, &f.e.pckKey.PublicKey, pckCAKey, tc.pckAlg)

	f.files["tcb_info_issuer_chain.pem"] = pemCert(tcbSigner)
	f.files["qe_identity_issuer_chain.pem"] = pemCert(tcbSigner)
	f.files["pck_crl_issuer_chain.pem"] = pemCert(pckCA)
	f.files["pck_crl.der"] = issueSignedCRL(t, pckCA, pckCAKey, tc.pckCRLAlg, notBefore, notAfter)
	f.files["root_ca_crl.der"] = issueSignedCRL(t, root, rootKey, tc.rootCRLAlg, notBefore, notAfter)
	if tc.withoutTCBInfo {
		delete(f.files, "tcb_info.json")
		delete(f.files, "tcb_info_issuer_chain.pem")
	}
	f.anchors = &collateral.Set{}
	f.anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: root.Raw, Certificate: root})

	var chain []byte
	for _, c := range []*x509.Certificate{pck, pckCA, root} {
		chain = append(chain, pemCert(c)...)
	}
	_, err := f.verifyQuote(withPCKChain(t, f.quote(t), chain))
	return err
}

// TestIntelProfileChecked issues the PCK chain, the TCB signing chain and
// the CRLs with keys and signature algorithms outside Intel's profile,
// which fixes ECDSA P-256 keys and ECDSA-SHA256 signatures for all of
// them. QVL verifies every certificate and CRL signature as ECDSA-SHA256
// under a P-256 key, so each case must be rejected with an error that
// names the certificate or CRL, what it has and what the profile requires.
func TestIntelProfileChecked(t *testing.T) {
	p384Key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []profileCase{
		{name: "Intel profile"},
		{name: "P-384 PCK CA", pckCAKey: p384Key,
			kind: attest.ErrChain, want: []string{"PCK CA", profilePCKCACN, "ECDSA P-384", "ECDSA P-256"}},
		{name: "RSA PCK CA", pckCAKey: rsaKey,
			kind: attest.ErrChain, want: []string{"PCK CA", profilePCKCACN, "RSA 2048-bit", "ECDSA P-256"}},
		{name: "P-384 root", rootKey: p384Key,
			kind: attest.ErrChain, want: []string{"root", profileRootCN, "ECDSA P-384", "ECDSA P-256"}},
		{name: "RSA root", rootKey: rsaKey,
			kind: attest.ErrChain, want: []string{"root", profileRootCN, "RSA 2048-bit", "ECDSA P-256"}},
		{name: "PCK certificate signed with ECDSA-SHA384", pckAlg: x509.ECDSAWithSHA384,
			kind: attest.ErrChain, want: []string{"PCK certificate", profilePCKCN, "ECDSA-SHA384", "ECDSA-SHA256"}},
		{name: "PCK CA signed with ECDSA-SHA384", pckCAAlg: x509.ECDSAWithSHA384,
			kind: attest.ErrChain, want: []string{"PCK CA", profilePCKCACN, "ECDSA-SHA384", "ECDSA-SHA256"}},
		{name: "root signed with ECDSA-SHA512", rootAlg: x509.ECDSAWithSHA512,
			kind: attest.ErrChain, want: []string{"root", profileRootCN, "ECDSA-SHA512", "ECDSA-SHA256"}},
		{name: "TCB signing certificate signed with ECDSA-SHA384", tcbSignerAlg: x509.ECDSAWithSHA384,
			kind: attest.ErrChain, want: []string{"tcbInfo signer", "TCB signing certificate", profileTCBSignerCN, "ECDSA-SHA384", "ECDSA-SHA256"}},
		{name: "QE Identity signer signed with ECDSA-SHA384", tcbSignerAlg: x509.ECDSAWithSHA384, withoutTCBInfo: true,
			kind: attest.ErrChain, want: []string{"enclaveIdentity signer", "TCB signing certificate", profileTCBSignerCN, "ECDSA-SHA384", "ECDSA-SHA256"}},
		{name: "P-384 TCB signing certificate", tcbSignerKey: p384Key,
			kind: attest.ErrChain, want: []string{"tcbInfo signer", "TCB signing certificate", profileTCBSignerCN, "ECDSA P-384", "ECDSA P-256"}},
		{name: "PCK CRL signed with ECDSA-SHA384", pckCRLAlg: x509.ECDSAWithSHA384,
			kind: attest.ErrSignature, want: []string{"PCK CRL", profilePCKCACN, "ECDSA-SHA384", "ECDSA-SHA256"}},
		{name: "Root CA CRL signed with ECDSA-SHA384", rootCRLAlg: x509.ECDSAWithSHA384,
			kind: attest.ErrSignature, want: []string{"Root CA CRL", profileRootCN, "ECDSA-SHA384", "ECDSA-SHA256"}},
	}
	for _, tc := range cases {
		for _, tee := range []string{"sgx", "tdx"} {
			t.Run(tc.name+" "+tee, func(t *testing.T) {
				err := verifyProfileCase(t, tee, tc)
				if tc.kind == nil {
					if err != nil {
						t.Fatalf("a hierarchy in Intel's profile failed: %v", err)
					}
					return
				}
				if !errors.Is(err, tc.kind) {
					t.Fatalf("error %v, expected a %v error", err, tc.kind)
				}
				for _, want := range tc.want {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %q", err, want)
					}
				}
			})
		}
	}
}

// TestSignatureAlgorithmNamed names the signature algorithm of an error
// message, including one Go does not know, which only its OID names.
func TestSignatureAlgorithmNamed(t *testing.T) {
	signed := func(oid asn1.ObjectIdentifier) []byte {
		der, err := asn1.Marshal(struct {
			TBS       asn1.RawValue
			Algorithm pkix.AlgorithmIdentifier
			Signature asn1.BitString
		}{asn1.RawValue{FullBytes: []byte{0x30, 0}}, pkix.AlgorithmIdentifier{Algorithm: oid}, asn1.BitString{Bytes: []byte{1}, BitLength: 8}})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	for _, tc := range []struct {
		name string
		alg  x509.SignatureAlgorithm
		raw  []byte
		want string
	}{
		{"ECDSA-SHA256", x509.ECDSAWithSHA256, nil, "ECDSA-SHA256"},
		{"RSA-PSS", x509.SHA256WithRSAPSS, nil, "SHA256-RSAPSS"},
		{"unknown OID", x509.UnknownSignatureAlgorithm, signed(asn1.ObjectIdentifier{1, 2, 3, 4}), "unknown (algorithm OID 1.2.3.4)"},
		{"unparsable", x509.UnknownSignatureAlgorithm, []byte{0x30}, "unparsable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := signatureAlgorithmName(tc.alg, tc.raw); got != tc.want {
				t.Errorf("signatureAlgorithmName = %q, expected %q", got, tc.want)
			}
		})
	}
}
