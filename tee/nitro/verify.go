package nitro

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"time"

	cose "github.com/veraison/go-cose"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

func init() { attest.Register(&Verifier{}) }

// Verifier verifies AWS Nitro Enclaves attestation documents. The zero value
// is ready to use and safe for concurrent use; it keeps a cache of verified
// certificate chains.
type Verifier struct {
	chains attest.ChainCache
}

// Name returns "nitro".
func (*Verifier) Name() string { return string(attest.TEENitro) }

// Detect reports whether data is a COSE_Sign1 message, tagged or untagged,
// whose protected header names ES384 and whose payload has a module_id.
func (*Verifier) Detect(data []byte) bool {
	if len(data) < 2 || !(data[0] == 0x84 || (data[0] == 0xd2 && data[1] == 0x84)) {
		return false
	}
	msg, _, err := decodeSign1(data)
	if err != nil {
		return false
	}
	var fields map[string]any
	if err := strictDecMode.Unmarshal(msg.Payload, &fields); err != nil {
		return false
	}
	_, ok := fields["module_id"]
	return ok
}

// Verify parses the document, verifies the certificate chain from the
// document's certificate through its CA bundle to the trusted root, then the
// COSE_Sign1 signature under the certificate's key, and returns the claims.
// cabundle[0], the root as AWS ships it, is never trusted: the root comes
// from attest.Roots, which is the embedded AWS Nitro Enclaves Root G1 unless
// the caller supplies roots of its own.
func (v *Verifier) Verify(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	doc, err := ParseDocument(ev.Data)
	if err != nil {
		return nil, err
	}
	at := opts.Time()

	chain, err := v.verifyChain(ctx, doc, opts, at)
	if err != nil {
		return nil, err
	}
	if err := verifySignature(doc, chain[0]); err != nil {
		return nil, err
	}

	embedded, _ := embeddedRoots()
	claims, err := newClaims(doc, chain, embedded, at)
	if err != nil {
		return nil, err
	}
	if err := checkNonce(claims, doc, opts.Nonce); err != nil {
		return claims, err
	}
	return claims, nil
}

// verifyChain returns the verified chain, leaf first, from the cache when
// the same certificates verified before and are valid at at.
func (v *Verifier) verifyChain(ctx context.Context, doc *Document, opts attest.Options, at time.Time) ([]*x509.Certificate, error) {
	embedded, err := embeddedRoots()
	if err != nil {
		return nil, attest.Errorf(attest.ErrChain, "root", "%v", err).WithFix("rebuild Cloister from an unmodified source tree")
	}
	roots, err := attest.Roots(ctx, opts, collateral.Query{TEE: string(attest.TEENitro), At: at}, embedded)
	if err != nil {
		return nil, err
	}

	// cabundle[0] is the root as AWS ships it. Only the intermediates after
	// it join the chain, so that a root in the document is never trusted,
	// but it must still be a certificate, as every cabundle entry is. The
	// check runs before the cache lookup because the cache key omits it.
	if _, err := x509.ParseCertificate(doc.CABundle[0]); err != nil {
		return nil, attest.Malformed("cabundle[0]", "invalid X.509 certificate in place of the root certificate", err)
	}
	bundle := doc.CABundle[1:]
	ders := make([][]byte, 0, 1+len(bundle)+len(roots))
	ders = append(ders, doc.Certificate)
	ders = append(ders, bundle...)
	for _, r := range roots {
		ders = append(ders, r.Raw)
	}
	key := attest.ChainKey(ders...)
	if chain, ok := v.chains.Lookup(key, at); ok {
		return chain, nil
	}

	leaf, err := x509.ParseCertificate(doc.Certificate)
	if err != nil {
		return nil, attest.Malformed("certificate", "invalid X.509 certificate", err)
	}
	intermediates := make([]*x509.Certificate, 0, len(bundle))
	for i, der := range bundle {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, attest.Malformed(fmt.Sprintf("cabundle[%d]", i+1), "invalid X.509 certificate", err)
		}
		intermediates = append(intermediates, c)
	}
	chain, err := attest.VerifyChain(leaf, intermediates, roots, at)
	if err != nil {
		return nil, explainReplacedRoot(err, doc, roots, embedded)
	}
	v.chains.Store(key, chain)
	return chain, nil
}

// explainReplacedRoot adds the likely fix to a chain error when the
// document chains to the AWS root but the caller's roots replaced it.
func explainReplacedRoot(err error, doc *Document, roots, embedded []*x509.Certificate) error {
	var e *attest.Error
	if !errors.As(err, &e) || len(embedded) == 0 || !bytes.Equal(doc.CABundle[0], embedded[0].Raw) {
		return err
	}
	for _, r := range roots {
		if bytes.Equal(r.Raw, embedded[0].Raw) {
			return err
		}
	}
	out := *e
	out.Fix = "the document chains to the AWS Nitro Enclaves Root G1, which the supplied root certificates replace; pass the AWS root, or no root certificate to use the embedded one"
	return &out
}

// verifySignature checks the COSE_Sign1 ES384 signature under the leaf
// certificate's P-384 key.
func verifySignature(doc *Document, leaf *x509.Certificate) error {
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return attest.Errorf(attest.ErrUnsupported, "certificate", "the document certificate's key is not an ECDSA P-384 key, which ES384 requires")
	}
	verifier, err := cose.NewVerifier(cose.AlgorithmES384, pub)
	if err != nil {
		return attest.Errorf(attest.ErrUnsupported, "certificate", "cannot use the certificate key for ES384: %v", err)
	}
	if err := doc.Message.Verify(nil, verifier); err != nil {
		return (&attest.Error{Kind: attest.ErrSignature, Field: "COSE_Sign1.signature",
			Reason: "the ES384 signature does not verify under the document certificate's key: the document was altered or is not genuine", Err: err}).
			WithFix("obtain a fresh attestation document from the enclave")
	}
	return nil
}

// checkNonce compares the document's nonce with the expected one, when the
// caller gave one.
func checkNonce(claims *attest.Claims, doc *Document, want []byte) error {
	if len(want) == 0 {
		claims.Skip("nonce", false, "no expected nonce was given")
		return nil
	}
	if !doc.HasNonce || !bytes.Equal(doc.Nonce, want) {
		got := "absent"
		if doc.HasNonce {
			got = attest.Hex(doc.Nonce).String()
		}
		claims.Fail("nonce", "the document's nonce differs from the expected nonce")
		return attest.Errorf(attest.ErrBinding, "nonce", "the document's nonce differs from the expected nonce").
			WithValues(got, attest.Hex(want).String()).
			WithFix("request a new attestation document with the expected nonce; an old document may be replayed")
	}
	claims.Pass("nonce")
	return nil
}

// newClaims builds the claims of a verified document.
func newClaims(doc *Document, chain, embedded []*x509.Certificate, at time.Time) (*attest.Claims, error) {
	for _, i := range []uint{0, 1, 2} {
		if _, ok := doc.PCRs[i]; !ok {
			return nil, attest.Malformed(fmt.Sprintf("pcrs[%d]", i), "PCR0, PCR1 and PCR2 must be present: they identify the enclave image and decide debug mode", nil)
		}
	}
	c := &attest.Claims{
		TEE:         attest.TEENitro,
		TrustAnchor: attest.DescribeRoot(chain[len(chain)-1], embedded),
		Measurement: doc.PCRs[0],
		Nonce:       doc.Nonce,
		ReportData:  doc.UserData,
		Debug:       isZero(doc.PCRs[0]) && isZero(doc.PCRs[1]) && isZero(doc.PCRs[2]),
		SigningKey:  "Nitro document certificate",
		VerifiedAt:  at,
	}
	c.Emulated = c.TrustAnchor.Kind == attest.AnchorEmulatedRoot

	for _, i := range doc.PCRIndexes() {
		c.SetMeasurement("pcr"+strconv.FormatUint(uint64(i), 10), doc.PCRs[i])
	}

	c.SetPlatform("module_id", doc.ModuleID)
	c.SetAttribute("module_id", doc.ModuleID)
	c.SetAttribute("digest", doc.Digest)
	c.SetAttribute("timestamp", doc.Timestamp.Format(time.RFC3339Nano))
	if doc.HasUserData {
		c.SetAttribute("user_data", attest.Hex(doc.UserData))
	}
	if doc.PublicKey != nil {
		c.SetAttribute("public_key", attest.Hex(doc.PublicKey))
	}
	c.SetAttribute("cose_tagged", doc.Tagged)

	for i, cert := range chain {
		c.Chain = append(c.Chain, attest.NewCertInfo(chainRole(i, len(chain)), cert))
	}
	c.Pass("certificate-chain")
	c.Pass("cose-signature")
	return c, nil
}

func chainRole(i, n int) string {
	switch i {
	case 0:
		return "document certificate"
	case n - 1:
		return "root"
	}
	return "intermediate CA"
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
