package nvgpu

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/cloister-dev/cloister/attest"
)

// maxRIMCertificates bounds the X509Certificate elements of a RIM's
// KeyInfo. NVIDIA's RIMs carry four: the signer, two intermediate CAs and
// the root.
const maxRIMCertificates = 8

// Algorithms accepted in a RIM's SignedInfo. SHA-1 is left out on purpose:
// NVIDIA signs with ECDSA P-384 and SHA-384.
var (
	rimSignatureMethods = map[string]bool{
		dsig.ECDSASHA256SignatureMethod: true, dsig.ECDSASHA384SignatureMethod: true, dsig.ECDSASHA512SignatureMethod: true,
		dsig.RSASHA256SignatureMethod: true, dsig.RSASHA384SignatureMethod: true, dsig.RSASHA512SignatureMethod: true,
	}
	rimDigestMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmlenc#sha256":       true,
		"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
		"http://www.w3.org/2001/04/xmlenc#sha512":       true,
	}
)

// signedRIM is a RIM whose XML signature and certificate chain verified.
type signedRIM struct {
	*RIM
	// chain runs from the signing certificate to the trusted root.
	chain []*x509.Certificate
}

// verifyRIM checks the enveloped XML-DSig signature of a RIM and the chain
// of its signing certificate to one of roots at the time at. It then
// decodes the SWID tag from the signed bytes only, so that no unsigned
// element can add or change a golden value. A document that is not a SWID
// tag returns errNotSWID before any signature check.
func verifyRIM(data []byte, roots []*x509.Certificate, at time.Time) (*signedRIM, error) {
	out := newRIMVerification(data, roots, at).outcome
	return out.rim, out.err
}

// rimOutcome is the result of verifying one RIM.
type rimOutcome struct {
	// rim is nil when err is set.
	rim *signedRIM
	err error
	// product and version are read from the unsigned content, so that a
	// RIM that fails can be matched with the GPUs it may belong to. They
	// are empty when the document does not parse far enough.
	product, version string
}

// rimVerification is the outcome of verifyRIM together with the
// certificates whose validity windows it depends on, so that the RIM cache
// can give the outcome at another verification time (outcomeAt). Every
// other step depends only on the document and the roots.
type rimVerification struct {
	outcome rimOutcome
	// leaf and intermediates are the certificates of the RIM's KeyInfo,
	// nil when the document failed before they were read.
	leaf          *x509.Certificate
	intermediates []*x509.Certificate
	// chain is the chain that verified, from leaf to root, or nil when the
	// validity check or the chain failed.
	chain []*x509.Certificate
}

// newRIMVerification verifies data as verifyRIM describes.
func newRIMVerification(data []byte, roots []*x509.Certificate, at time.Time) *rimVerification {
	v := &rimVerification{}
	fail := func(err error) *rimVerification {
		v.outcome.err = err
		return v
	}
	doc, err := readRIMDocument(data)
	if err != nil {
		return fail(err)
	}
	root := doc.Root()
	if root.Tag != "SoftwareIdentity" || root.NamespaceURI() != swidNamespace {
		return fail(errNotSWID)
	}
	v.outcome.product, v.outcome.version, _ = readMeta(root)

	sig, err := signatureElement(root)
	if err != nil {
		return fail(err)
	}
	leaf, intermediates, err := keyInfoCertificates(sig)
	if err != nil {
		return fail(err)
	}
	v.leaf, v.intermediates = leaf, intermediates
	if err := checkCertificateValidity(leaf, intermediates, at); err != nil {
		return fail(err)
	}
	chain, err := attest.VerifyChain(leaf, intermediates, roots, at)
	if err != nil {
		return fail(err)
	}
	v.chain = chain
	if err := checkRIMKeyUsage(chain); err != nil {
		return fail(err)
	}

	rim, err := verifySignedContent(root, sig, leaf, at)
	if err != nil {
		return fail(err)
	}
	v.outcome.rim = &signedRIM{RIM: rim, chain: chain}
	return v
}

// outcomeAt returns the outcome that a new verification of the same
// document under the same roots would have at the time at, and false when
// only a new verification can decide. The steps before the validity check
// depend on neither the roots nor the time, and the validity check is run
// again at at. After the chain, the outcome holds while at is inside the
// validity window of every certificate of the chain, because the chain's
// signatures and key usages do not change and goxmldsig (v1.6.1) reads
// the clock only to check the signing certificate's window. Outside that
// window, which can only be the root's, and after a failed chain, it
// returns false.
func (v *rimVerification) outcomeAt(at time.Time) (rimOutcome, bool) {
	if v.leaf == nil {
		return v.outcome, true
	}
	if err := checkCertificateValidity(v.leaf, v.intermediates, at); err != nil {
		out := v.outcome
		out.rim, out.err = nil, err
		return out, true
	}
	if v.chain == nil {
		return rimOutcome{}, false
	}
	for _, c := range v.chain {
		if at.Before(c.NotBefore) || at.After(c.NotAfter) {
			return rimOutcome{}, false
		}
	}
	return v.outcome, true
}

// verifySignedContent checks the XML signature of a RIM under its signing
// certificate, whose key usage checkRIMKeyUsage has checked, and decodes
// the SWID tag from the signed content only.
func verifySignedContent(root, sig *etree.Element, leaf *x509.Certificate, at time.Time) (*RIM, error) {
	if err := normalizeECDSASignature(sig, leaf); err != nil {
		return nil, err
	}
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{leaf}})
	ctx.Clock = dsig.NewFakeClockAt(at)
	signed, err := ctx.Validate(root)
	if err != nil {
		return nil, &attest.Error{Kind: attest.ErrSignature, Field: "Signature",
			Reason: "the XML signature does not verify under the signing certificate " + strconv.Quote(leaf.Subject.String()), Err: err}
	}
	return decodeSWID(signed)
}

// signatureElement returns the one ds:Signature element, which must be a
// child of the root, with one SignedInfo that signs the whole document
// (a single Reference with URI "") under an accepted algorithm. A second
// Signature anywhere, or a Reference to part of the document, is rejected,
// because the signed content must be exactly the tag that is read.
func signatureElement(root *etree.Element) (*etree.Element, error) {
	var found []*etree.Element
	var walk func(*etree.Element)
	walk = func(el *etree.Element) {
		for _, c := range el.ChildElements() {
			if c.Tag == "Signature" && c.NamespaceURI() == dsigNamespace {
				found = append(found, c)
			}
			walk(c)
		}
	}
	walk(root)
	if len(found) != 1 || found[0].Parent() != root {
		return nil, &attest.Error{Kind: attest.ErrSignature, Field: "Signature",
			Reason: fmt.Sprintf("%d Signature elements; a RIM has exactly one, as a child of SoftwareIdentity", len(found))}
	}

	sig := found[0]
	info := dsigChildren(sig, "SignedInfo")
	if len(info) != 1 {
		return nil, signatureShapeError("Signature has %d SignedInfo elements; expected one", len(info))
	}
	method := dsigChildren(info[0], "SignatureMethod")
	if len(method) != 1 || !rimSignatureMethods[plainAttr(method[0], "Algorithm")] {
		return nil, signatureShapeError("SignedInfo needs one SignatureMethod of ECDSA or RSA with SHA-256, SHA-384 or SHA-512")
	}

	refs := dsigChildren(info[0], "Reference")
	if len(refs) != 1 || !hasEmptyURI(refs[0]) {
		return nil, signatureShapeError("SignedInfo needs exactly one Reference, with URI \"\" (the whole document)")
	}
	digest := dsigChildren(refs[0], "DigestMethod")
	if len(digest) != 1 || !rimDigestMethods[plainAttr(digest[0], "Algorithm")] {
		return nil, signatureShapeError("the Reference needs one DigestMethod of SHA-256, SHA-384 or SHA-512")
	}
	return sig, nil
}

// hasEmptyURI reports whether a Reference has the attribute URI="", which
// XML-DSig defines as the whole document that holds the signature.
func hasEmptyURI(ref *etree.Element) bool {
	for _, a := range ref.Attr {
		if a.Space == "" && a.Key == "URI" {
			return a.Value == ""
		}
	}
	return false
}

func signatureShapeError(format string, args ...any) error {
	return &attest.Error{Kind: attest.ErrSignature, Field: "Signature/SignedInfo", Reason: fmt.Sprintf(format, args...)}
}

// dsigChildren returns the child elements of el named tag in the XML-DSig
// namespace.
func dsigChildren(el *etree.Element, tag string) []*etree.Element {
	return childrenIn(el, dsigNamespace, tag)
}

// keyInfoCertificates returns the first certificate of KeyInfo/X509Data,
// which goxmldsig takes as the signer, and the others without self-issued
// ones. A root carried in the RIM never becomes a trust anchor by being
// there.
func keyInfoCertificates(sig *etree.Element) (*x509.Certificate, []*x509.Certificate, error) {
	var elems []*etree.Element
	for _, ki := range dsigChildren(sig, "KeyInfo") {
		for _, xd := range dsigChildren(ki, "X509Data") {
			elems = append(elems, dsigChildren(xd, "X509Certificate")...)
		}
	}
	if len(elems) == 0 || len(elems) > maxRIMCertificates {
		return nil, nil, &attest.Error{Kind: attest.ErrChain, Field: "Signature/KeyInfo/X509Data",
			Reason: fmt.Sprintf("%d X509Certificate elements; expected 1 to %d, signer first", len(elems), maxRIMCertificates)}
	}
	var certs []*x509.Certificate
	for i, el := range elems {
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(el.Text()), ""))
		if err == nil {
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(der); err == nil {
				certs = append(certs, cert)
				continue
			}
		}
		return nil, nil, attest.Malformed(fmt.Sprintf("Signature/KeyInfo/X509Data/X509Certificate[%d]", i), "not a base64 DER certificate", err)
	}
	return certs[0], nonRoots(certs[1:]), nil
}

// checkCertificateValidity returns an attest.ErrCollateralExpired error when
// the signing certificate or an intermediate CA that the RIM carries is
// outside its validity window at at. The window of its signing chain is the
// only period of validity that a RIM has, so such a RIM is expired
// collateral, while attest.ErrChain from attest.VerifyChain means that the
// chain does not lead to a trusted root. The root is not checked here,
// because it is the caller's trust anchor, not part of the RIM.
func checkCertificateValidity(leaf *x509.Certificate, intermediates []*x509.Certificate, at time.Time) error {
	for _, c := range append([]*x509.Certificate{leaf}, intermediates...) {
		switch {
		case at.After(c.NotAfter):
			return attest.Errorf(attest.ErrCollateralExpired, "Signature/KeyInfo/X509Data", "certificate %q expired at %s (notAfter), before the verification time %s",
				c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339Nano)).
				WithFix("fetch the current RIM of this version from NVIDIA's RIM service, or pass the time the report was produced with --at")
		case at.Before(c.NotBefore):
			return attest.Errorf(attest.ErrCollateralExpired, "Signature/KeyInfo/X509Data", "certificate %q is not yet valid: notBefore %s is after the verification time %s",
				c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339Nano)).
				WithFix("check the verification time given with --at and the system clock")
		}
	}
	return nil
}

// normalizeECDSASignature rewrites an ECDSA SignatureValue from the r||s
// form of XML-DSig (RFC 4050, RFC 6931 section 2.3.6), which NVIDIA uses,
// to the ASN.1 DER form that goxmldsig v1.6.1 passes to
// x509.Certificate.CheckSignature. A value of any other length is left as
// it is, which keeps DER signatures (as goxmldsig itself writes them)
// verifiable. The SignatureValue is outside the signed content, so the
// rewrite changes no signed byte.
func normalizeECDSASignature(sig *etree.Element, leaf *x509.Certificate) error {
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil
	}
	values := dsigChildren(sig, "SignatureValue")
	if len(values) != 1 {
		return signatureShapeError("Signature has %d SignatureValue elements; expected one", len(values))
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(values[0].Text()), ""))
	if err != nil {
		return &attest.Error{Kind: attest.ErrSignature, Field: "Signature/SignatureValue", Reason: "not base64", Err: err}
	}
	size := (pub.Curve.Params().BitSize + 7) / 8
	if len(raw) != 2*size {
		return nil
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(raw[:size]), new(big.Int).SetBytes(raw[size:]),
	})
	if err != nil {
		return errors.New("encoding the ECDSA signature as DER: " + err.Error())
	}
	values[0].SetText(base64.StdEncoding.EncodeToString(der))
	return nil
}
