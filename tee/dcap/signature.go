package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/pcsdoc"
)

// parseRawP256Key parses a 64-byte x||y P-256 public key as carried in
// quotes, rejecting points that are not on the curve.
func parseRawP256Key(raw []byte) (*ecdsa.PublicKey, error) {
	if len(raw) != ecdsaKeySize {
		return nil, fmt.Errorf("%d bytes, expected %d", len(raw), ecdsaKeySize)
	}
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, raw...))
}

// tcbSignerFix is the fix for a TCB signing chain outside Intel's profile.
const tcbSignerFix = "pass the issuer chain that Intel PCS serves with the document (the TCB-Info-Issuer-Chain or SGX-Enclave-Identity-Issuer-Chain header), whose leaf is the Intel SGX TCB Signing certificate"

// verifyDocument finds the certificate among the collateral that signed an
// Intel PCS document (TCB Info or QE Identity), and verifies that
// certificate's chain to roots at at. It returns the chain, signer first.
// The signer and its verified path are cached per parsed document. The
// validity windows are checked every time, because they depend on at.
func (v *Verifier) verifyDocument(docName string, doc *pcsdoc.Document, set *collateral.Set, roots *rootSet, at time.Time) ([]*x509.Certificate, error) {
	items := set.OfKind(collateral.KindCertificate)
	certs := set.Certificates()
	var signer *x509.Certificate
	if sum, ok := v.signers.get(doc); ok {
		for _, it := range items {
			if it.SHA256 == sum {
				signer = it.Certificate
				break
			}
		}
	}
	haveTCBSigner := false
	// A TCB signing certificate with a key other than P-256 cannot have
	// signed the document, whose signature is raw ECDSA P-256, but it is
	// the cause to report when no other certificate verifies it.
	var offProfileSigner *x509.Certificate
	for _, it := range items {
		if signer != nil {
			break
		}
		c := it.Certificate
		if bytes.Equal(c.RawIssuer, c.RawSubject) {
			continue
		}
		isTCBSigner := strings.Contains(c.Subject.CommonName, "SGX TCB Signing")
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			if isTCBSigner && offProfileSigner == nil {
				offProfileSigner = c
			}
			continue
		}
		haveTCBSigner = haveTCBSigner || isTCBSigner
		if pcsdoc.VerifyRawECDSA(pub, doc.Body, doc.Signature) {
			v.signers.set(doc, it.SHA256)
			signer = c
		}
	}
	if signer == nil && offProfileSigner != nil {
		return nil, checkProfileKey(docName+" signer", "TCB signing certificate", offProfileSigner, tcbSignerFix)
	}
	if signer == nil {
		if !haveTCBSigner {
			return nil, attest.Errorf(attest.ErrCollateralMissing, docName, "missing the TCB signing certificate that signed it").
				WithFix("pass the issuer chain Intel PCS serves with it (the TCB-Info-Issuer-Chain or SGX-Enclave-Identity-Issuer-Chain header) with --collateral")
		}
		return nil, attest.Errorf(attest.ErrSignature, docName, "the signature does not verify under any supplied certificate").
			WithFix("the document was altered, or its issuer chain is missing; fetch both again from Intel PCS")
	}
	key := documentPathKey{doc: doc, signer: signer, roots: roots}
	if path, ok := v.documentPaths.get(key); ok {
		for _, cert := range path {
			if err := checkValidity(docName+" signer", cert, at); err != nil {
				return nil, err
			}
		}
		return path, nil
	}
	path, err := v.verifyChain("TCB signing certificate", signer, certs, roots.certs, at)
	if err != nil {
		var ae *attest.Error
		if errors.As(err, &ae) {
			ae.Field = docName + " signer: " + ae.Field
		}
		return nil, err
	}

	// Every PCK certificate also chains to the root, so a chain alone
	// would let the key of one platform sign TCB Info for all. Intel's
	// TCB signing certificate is issued by the root itself, is named
	// "Intel SGX TCB Signing" and carries no SGX extensions.
	if len(path) != 2 || !strings.Contains(signer.Subject.CommonName, "SGX TCB Signing") || hasSGXExtensions(signer) {
		return nil, attest.Errorf(attest.ErrChain, docName+" signer", "certificate %q is not the TCB signing certificate issued by the root", signer.Subject.CommonName).
			WithFix("pass the issuer chain Intel PCS serves with the document; its leaf is the Intel SGX TCB Signing certificate")
	}
	if err := checkIntelProfile(docName+" signer", path, []string{"TCB signing certificate"}, tcbSignerFix); err != nil {
		return nil, err
	}
	v.documentPaths.set(key, path)
	return path, nil
}

func hasSGXExtensions(cert *x509.Certificate) bool {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(OIDSGXExtensions) {
			return true
		}
	}
	return false
}
