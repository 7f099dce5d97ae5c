package ratls

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// FormatName is the name of the verifier that this package registers with
// attest.Register: `cloister verify` accepts an RA-TLS certificate (PEM or
// DER) and verifies the evidence inside.
const FormatName = "ratls"

func init() { attest.Register(certVerifier{}) }

// certVerifier is the attest.Verifier for RA-TLS certificates.
type certVerifier struct{}

func (certVerifier) Name() string { return FormatName }

// Detect reports whether data is an X.509 certificate, PEM or DER, that
// carries one of the evidence extensions.
func (certVerifier) Detect(data []byte) bool {
	cert, err := parseCertificate(data)
	return err == nil && HasEvidenceExtension(cert)
}

// Verify verifies the certificate's evidence with the verifier of its
// format and checks the key binding and the certificate's validity at
// opts.Time().
func (certVerifier) Verify(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	cert, err := parseCertificate(ev.Data)
	if err != nil {
		return nil, err
	}
	claims, _, err := VerifyCertificate(ctx, cert, opts)
	return claims, err
}

// Inspect decodes the certificate and its evidence extension without
// verifying anything.
func (certVerifier) Inspect(data []byte) (any, error) {
	cert, err := parseCertificate(data)
	if err != nil {
		return nil, err
	}
	ce, err := ParseCertEvidence(cert)
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"subject": cert.Subject.String(), "not_before": cert.NotBefore.UTC(), "not_after": cert.NotAfter.UTC(),
		"layout": ce.Layout, "oid": ce.OID.String(), "evidence_bytes": len(ce.Evidence), "aux_bytes": len(ce.Aux),
	}
	if ce.Tag != 0 {
		out["cbor_tag"] = ce.Tag
	}
	if ce.Claims != nil {
		out["claims"] = ce.Claims
	}
	if v, err := attest.Detect(ce.Evidence); err == nil {
		if in, ok := v.(attest.Inspector); ok {
			if fields, err := in.Inspect(ce.Evidence); err == nil {
				out["evidence"] = map[string]any{"format": v.Name(), "fields": fields}
			}
		}
	}
	return out, nil
}

// parseCertificate accepts one certificate as PEM or DER.
func parseCertificate(data []byte) (*x509.Certificate, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE" {
			return nil, attest.Errorf(attest.ErrMalformed, "certificate", "PEM block is %q, not CERTIFICATE", block.Type)
		}
		der = block.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, attest.Malformed("certificate", "not an X.509 certificate", err)
	}
	return cert, nil
}

// Attribute names that VerifyCertificate adds to the claims.
const (
	AttrLayout      = "ratls_layout"
	AttrBindingRule = "ratls_binding_rule"
	AttrCertificate = "ratls_certificate_sha256"
	AttrIssuedAt    = "ratls_issued_at"
	AttrRole        = "ratls_role"
	AttrFormat      = "ratls_evidence_format"
)

// VerifyCertificate verifies the evidence in cert with the registered
// verifier of its format, checks that the evidence binds the certificate's
// public key, and checks the certificate's validity window at opts.Time().
// It returns the inner verifier's claims with the binding recorded in
// Checks and Attributes, and the parsed evidence. As with attest.Verifier,
// a failure after the evidence's signatures verified returns the claims
// together with the error.
func VerifyCertificate(ctx context.Context, cert *x509.Certificate, opts attest.Options) (*attest.Claims, *CertEvidence, error) {
	ce, err := ParseCertEvidence(cert)
	if err != nil {
		return nil, nil, err
	}
	if err := checkCriticalExtensions(cert); err != nil {
		return nil, ce, err
	}

	format, err := detectInner(ce)
	if err != nil {
		return nil, ce, err
	}
	inner := attest.Evidence{Format: format, Data: ce.Evidence, Aux: ce.Aux}
	innerOpts := opts
	innerOpts.Nonce = nil // the nonce, if any, belongs to the certificate's claims
	claims, verr := attest.Verify(ctx, inner, innerOpts)
	if claims == nil {
		if verr == nil {
			verr = errors.New("ratls: the evidence verifier returned no claims")
		}
		return nil, ce, verr
	}
	claims.SetAttribute(AttrFormat, format)

	sum := sha256.Sum256(cert.Raw)
	claims.SetAttribute(AttrLayout, string(ce.Layout))
	claims.SetAttribute(AttrCertificate, attest.Hex(sum[:]).String())

	errs := []error{verr}
	errs = append(errs, checkSelfSignature(cert, claims))
	errs = append(errs, recordBinding(cert, ce, claims))
	errs = append(errs, checkValidity(cert, ce, claims, opts.Time()))
	errs = append(errs, checkAge(ce, claims, opts.Time(), opts.MaxAge))
	errs = append(errs, checkCertNonce(ce, claims, opts.Nonce))
	errs = append(errs, checkGramineLegacy(ctx, cert, ce, claims, innerOpts))
	return claims, ce, firstError(errs)
}

// checkGramineLegacy verifies the legacy quote that Gramine writes next to
// its tagged evidence: its signature, its binding of the certificate's key
// and that it comes from the enclave of the tagged evidence, in the same
// debug mode. A verifier that reads only the legacy extension then accepts
// the same TEE as this one.
func checkGramineLegacy(ctx context.Context, cert *x509.Certificate, ce *CertEvidence, claims *attest.Claims, opts attest.Options) error {
	const check = "ratls-gramine-legacy-quote"
	if ce.Legacy == nil {
		return nil
	}
	err := verifyGramineLegacy(ctx, cert, ce, claims, opts)
	if err != nil {
		claims.Fail(check, err.Error())
		return err
	}
	claims.Pass(check)
	return nil
}

func verifyGramineLegacy(ctx context.Context, cert *x509.Certificate, ce *CertEvidence, claims *attest.Claims, opts attest.Options) error {
	format, err := detectInner(ce.Legacy)
	if err != nil {
		return err
	}
	legacy, err := attest.Verify(ctx, attest.Evidence{Format: format, Data: ce.Legacy.Evidence}, opts)
	if err != nil {
		return fmt.Errorf("ratls: the Gramine legacy quote next to the tagged evidence: %w", err)
	}
	if _, _, err := CheckBinding(cert, ce.Legacy, legacy.ReportData); err != nil {
		return fmt.Errorf("ratls: the Gramine legacy quote next to the tagged evidence: %w", err)
	}
	if err := sameIdentityAs(claims, legacy, "Gramine legacy quote", "legacy quote"); err != nil {
		return err
	}
	if legacy.Debug != claims.Debug {
		return attest.Errorf(attest.ErrBinding, "Gramine legacy quote debug", "the legacy quote's debug mode differs from the tagged evidence's").
			WithValues(fmt.Sprint(legacy.Debug), fmt.Sprint(claims.Debug)).
			WithFix("both quotes of a Gramine certificate come from one enclave, so do not trust this certificate")
	}
	return nil
}

// checkCriticalExtensions rejects a critical extension that neither
// crypto/x509 nor this package processes, as RFC 5280 section 4.2
// requires. The TLS handshake skips the chain verification that would
// otherwise reject it. The evidence and endorsement extensions are
// processed here, and rats-tls marks them critical.
func checkCriticalExtensions(cert *x509.Certificate) error {
	for _, id := range cert.UnhandledCriticalExtensions {
		if isEvidenceOID(id) || id.Equal(OIDEndorsementManifest) {
			continue
		}
		return attest.Errorf(attest.ErrUnsupported, "certificate extensions",
			"critical extension %s is not understood, so the certificate must be rejected", id).
			WithFix("issue the RA-TLS certificate without this extension, or mark it non-critical")
	}
	return nil
}

// detectInner detects the format of the certificate's evidence and checks
// that it is the format its layout or CBOR tag names.
func detectInner(ce *CertEvidence) (string, error) {
	v, err := attest.Detect(ce.Evidence)
	if err != nil {
		return "", err
	}
	format := v.Name()
	switch {
	case ce.Layout == LayoutTaggedEvidence && !formatMatchesTag(format, ce.Tag):
		return "", attest.Errorf(attest.ErrMalformed, "tagged evidence tag", "CBOR tag %#x does not name %s evidence", ce.Tag, format).
			WithFix("the certificate's issuer labelled its evidence wrongly; do not trust it")
	case ce.Layout != LayoutTaggedEvidence && !quoteFormats[format]:
		return "", attest.Errorf(attest.ErrMalformed, string(ce.Layout), "the extension must carry an SGX quote, not %s evidence", format)
	}
	return format, nil
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkSelfSignature verifies the signature of a self-signed certificate.
// A CA-signed RA-TLS certificate is allowed: its trust comes from the
// evidence, and the TLS handshake proves possession of the key.
func checkSelfSignature(cert *x509.Certificate, claims *attest.Claims) error {
	if !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
		claims.Skip("ratls-certificate-signature", false, "the certificate is not self-signed; its issuer is not checked, and the evidence alone vouches for the key")
		return nil
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		claims.Fail("ratls-certificate-signature", err.Error())
		return &attest.Error{Kind: attest.ErrSignature, Field: "certificate signature", Reason: "the self-signature does not verify", Err: err}
	}
	claims.Pass("ratls-certificate-signature")
	return nil
}

func recordBinding(cert *x509.Certificate, ce *CertEvidence, claims *attest.Claims) error {
	rule, warnings, err := CheckBinding(cert, ce, claims.ReportData)
	claims.SetAttribute(AttrBindingRule, string(rule))
	claims.Warnings = append(claims.Warnings, warnings...)
	if err != nil {
		claims.Fail("ratls-key-binding", err.Error())
		return err
	}
	claims.Pass("ratls-key-binding")
	return nil
}

// checkValidity checks the certificate's validity window at the given
// time. For Cloister certificates the attested issuance time must equal
// NotBefore, so the window itself is attested.
func checkValidity(cert *x509.Certificate, ce *CertEvidence, claims *attest.Claims, at time.Time) error {
	if c := ce.Claims; c != nil && c.Binding == BindingV1 {
		issued := time.Unix(c.IssuedAt, 0).UTC()
		claims.SetAttribute(AttrIssuedAt, issued)
		claims.SetAttribute(AttrRole, string(c.Role))
		if !issued.Equal(cert.NotBefore.UTC()) {
			claims.Fail("ratls-validity", "attested issuance time differs from notBefore")
			return attest.Errorf(attest.ErrBinding, "certificate notBefore", "differs from the attested issuance time").
				WithValues(cert.NotBefore.UTC().Format(time.RFC3339), issued.Format(time.RFC3339))
		}
	} else {
		claims.Skip("ratls-freshness", false, fmt.Sprintf("%s evidence carries no attested issuance time, so its age is unknown", ce.Layout))
	}
	window := fmt.Sprintf("valid from %s to %s", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	switch {
	case at.Add(clockSkew).Before(cert.NotBefore):
		claims.Fail("ratls-validity", "the certificate is not yet valid")
		return attest.Errorf(attest.ErrBinding, "certificate validity", "the certificate is issued in the future: %s, not at %s", window, at.UTC().Format(time.RFC3339)).
			WithFix("check the clocks of both ends")
	case at.After(cert.NotAfter):
		claims.Fail("ratls-validity", "the certificate has expired")
		return attest.Errorf(attest.ErrBinding, "certificate validity", "the evidence is stale: the certificate is %s, not at %s", window, at.UTC().Format(time.RFC3339)).
			WithFix("fetch a fresh certificate from the peer, or pass --at with a time inside the window")
	}
	claims.Pass("ratls-validity")
	return nil
}

// checkAge requires the attested issuance time of a cloister-v1
// certificate to be at most maxAge (DefaultMaxAge when zero) before at.
// A certificate with a long lifetime is still within notAfter long after
// its evidence stops proving anything about the TEE's current state.
// Undated layouts are recorded as not checked by checkValidity.
func checkAge(ce *CertEvidence, claims *attest.Claims, at time.Time, maxAge time.Duration) error {
	c := ce.Claims
	if c == nil || c.Binding != BindingV1 {
		return nil
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	issued := time.Unix(c.IssuedAt, 0).UTC()
	age := at.Sub(issued)
	if age > maxAge {
		claims.Fail("ratls-freshness", fmt.Sprintf("the evidence is %s old, more than the maximum age of %s", age.Round(time.Second), maxAge))
		return attest.Errorf(attest.ErrBinding, "claims.iat", "the evidence is stale: issued at %s and verified at %s, so its age exceeds the maximum age",
			issued.Format(time.RFC3339), at.UTC().Format(time.RFC3339)).
			WithValues(age.Round(time.Second).String(), "at most "+maxAge.String()).
			WithFix("fetch a fresh certificate from the peer, which renews its own unless it lost its TEE; to accept older evidence, raise the maximum age (--max-age of verify and connect, --client-max-age of the agent)")
	}
	claims.Pass("ratls-freshness")
	return nil
}

// checkCertNonce compares the caller's expected nonce with the nonce claim.
func checkCertNonce(ce *CertEvidence, claims *attest.Claims, want []byte) error {
	if len(want) == 0 {
		return nil
	}
	var got []byte
	if ce.Claims != nil {
		got = ce.Claims.Nonce
	}
	if !bytes.Equal(got, want) {
		claims.Fail("ratls-nonce", "certificate nonce differs from the expected nonce")
		return attest.Errorf(attest.ErrBinding, "claims.nonce", "the certificate's nonce differs from the expected one").
			WithValues(attest.Hex(got).String(), attest.Hex(want).String())
	}
	claims.Nonce = got
	claims.Pass("ratls-nonce")
	return nil
}
