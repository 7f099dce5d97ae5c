package ratls

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// BindingRule names how a certificate's public key is bound into the
// report data of its evidence.
type BindingRule string

const (
	// RuleCloisterV1: report data = SHA-512(claims buffer), all 64 bytes,
	// and the claims hold "cloister-ratls": "v1", the SHA-256 of the
	// SubjectPublicKeyInfo, a nonce, the issuance time and the role.
	RuleCloisterV1 BindingRule = "cloister-v1: report_data = SHA-512(claims), claims.pubkey-hash = SHA-256(SPKI)"
	// RuleTaggedSHA256: report data[0:32] = SHA-256(claims buffer) and the
	// claims' pubkey-hash matches the SubjectPublicKeyInfo (Gramine,
	// rats-tls).
	RuleTaggedSHA256 BindingRule = "tcg-dice: report_data[0:32] = SHA-256(claims), claims.pubkey-hash = hash(SPKI)"
	// RuleLegacySPKI: report data[0:32] = SHA-256(SubjectPublicKeyInfo)
	// (Gramine's legacy extension).
	RuleLegacySPKI BindingRule = "gramine-legacy: report_data[0:32] = SHA-256(SPKI)"
	// RuleOpenEnclave: report data[0:32] = SHA-256(custom claims buffer)
	// and the buffer is the certificate's public key in PEM.
	RuleOpenEnclave BindingRule = "open-enclave: report_data[0:32] = SHA-256(custom claims), custom claims = PEM public key"
)

// certReportData returns the report data of a Cloister certificate: the
// SHA-512 of its claims buffer. The buffer's "cloister-ratls" claim is the
// domain separator.
func certReportData(claimsBuffer []byte) []byte {
	sum := sha512.Sum512(claimsBuffer)
	return sum[:]
}

// CheckBinding checks that reportData, proven by the TEE, binds the public
// key of cert according to the rule of the evidence's layout, and returns
// that rule. The warnings list bytes of the report data that the rule
// leaves unbound.
func CheckBinding(cert *x509.Certificate, ce *CertEvidence, reportData []byte) (BindingRule, []string, error) {
	spki := cert.RawSubjectPublicKeyInfo
	switch ce.Layout {
	case LayoutTaggedEvidence:
		if ce.Claims.Binding == BindingV1 {
			return RuleCloisterV1, nil, checkCloisterV1(spki, ce, reportData)
		}
		return RuleTaggedSHA256, unboundTail(reportData), checkTaggedSHA256(spki, ce, reportData)
	case LayoutGramineLegacy:
		sum := sha256.Sum256(spki)
		return RuleLegacySPKI, unboundTail(reportData), comparePrefix("report data", reportData, sum[:], "SHA-256 of the certificate's SubjectPublicKeyInfo")
	case LayoutOpenEnclave:
		return RuleOpenEnclave, unboundTail(reportData), checkOpenEnclave(cert, ce, reportData)
	}
	return "", nil, attest.Errorf(attest.ErrUnsupported, "layout", "unknown evidence layout %q", ce.Layout)
}

func checkCloisterV1(spki []byte, ce *CertEvidence, reportData []byte) error {
	if err := checkPubkeyHash(spki, ce.Claims); err != nil {
		return err
	}
	if ce.Claims.PubkeyHashAlg != hashSHA256 {
		return attest.Errorf(attest.ErrBinding, "claims.pubkey-hash", "hash algorithm %d; the cloister-v1 rule uses SHA-256 (1)", ce.Claims.PubkeyHashAlg)
	}
	if err := checkCloisterV1Claims(ce.Claims); err != nil {
		return err
	}
	want := certReportData(ce.ClaimsBuffer)
	if !bytes.Equal(reportData, want) {
		return attest.Errorf(attest.ErrBinding, "report data", "does not equal SHA-512 of the certificate's claims, so the evidence was produced for another key or claims").
			WithValues(hex.EncodeToString(reportData), hex.EncodeToString(want)).
			WithFix("the certificate's evidence belongs to a different certificate; reconnect, and if it persists, the peer is not the attested TEE")
	}
	return nil
}

// checkCloisterV1Claims requires the claims that the cloister-v1 rule
// defines and no others. A claim that this version does not define may be
// one that a later version enforces, so it is rejected, not ignored.
func checkCloisterV1Claims(c *CertClaims) error {
	const fix = "the peer's certificate was not issued by a Cloister that speaks cloister-v1; upgrade the verifier or reissue the certificate"
	if len(c.Unknown) > 0 {
		return attest.Errorf(attest.ErrMalformed, "claims", "unknown claims %q in a cloister-v1 claims map, which defines only %q, %q, %q, %q and %q",
			c.Unknown, claimBinding, claimPubkeyHash, claimNonce, claimIssued, claimRole).WithFix(fix)
	}
	if c.Role != RoleServer && c.Role != RoleClient {
		return attest.Errorf(attest.ErrMalformed, "claims.role", "role %q is neither %q nor %q", c.Role, RoleServer, RoleClient).WithFix(fix)
	}
	if c.IssuedAt == 0 || len(c.Nonce) == 0 {
		return attest.Errorf(attest.ErrMalformed, "claims", "a cloister-v1 claims map needs a nonzero iat and a nonempty nonce (iat %d, nonce of %d bytes)", c.IssuedAt, len(c.Nonce)).WithFix(fix)
	}
	return nil
}

func checkTaggedSHA256(spki []byte, ce *CertEvidence, reportData []byte) error {
	if err := checkPubkeyHash(spki, ce.Claims); err != nil {
		return err
	}
	sum := sha256.Sum256(ce.ClaimsBuffer)
	return comparePrefix("report data", reportData, sum[:], "SHA-256 of the certificate's claims")
}

// checkPubkeyHash compares the "pubkey-hash" claim with the hash of spki.
func checkPubkeyHash(spki []byte, c *CertClaims) error {
	h, err := hashFor(c.PubkeyHashAlg)
	if err != nil {
		return attest.Malformed("claims.pubkey-hash", "unsupported hash", err)
	}
	h.Write(spki)
	got := h.Sum(nil)
	if !bytes.Equal(got, c.PubkeyHash) {
		return attest.Errorf(attest.ErrBinding, "claims.pubkey-hash", "the certificate's public key is not the key bound in its evidence").
			WithValues(hex.EncodeToString(got), hex.EncodeToString(c.PubkeyHash)).
			WithFix("the certificate was altered or its evidence copied from another certificate; do not trust this peer")
	}
	return nil
}

func checkOpenEnclave(cert *x509.Certificate, ce *CertEvidence, reportData []byte) error {
	sum := sha256.Sum256(ce.ClaimsBuffer)
	if err := comparePrefix("report data", reportData, sum[:], "SHA-256 of the Open Enclave custom claims"); err != nil {
		return err
	}
	spki, err := oePublicKey(ce.ClaimsBuffer)
	if err != nil {
		return err
	}
	if !bytes.Equal(spki, cert.RawSubjectPublicKeyInfo) {
		got := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		want := sha256.Sum256(spki)
		return attest.Errorf(attest.ErrBinding, "Open Enclave custom claims buffer", "the public key in the evidence is another key than the certificate's (SHA-256 of SubjectPublicKeyInfo shown)").
			WithValues(hex.EncodeToString(got[:]), hex.EncodeToString(want[:])).
			WithFix("the certificate's evidence belongs to another key; do not trust this peer")
	}
	return nil
}

// oePublicKey returns the SubjectPublicKeyInfo of an Open Enclave
// certificate's custom claims buffer. Open Enclave 0.19's
// oe_get_attestation_certificate_with_evidence passes the certificate's
// public key in PEM, with a terminating NUL, as the whole buffer, and its
// verifier requires the buffer to equal that key. A buffer that holds
// anything else, such as serialized custom claims that name the key among
// others, is rejected: an enclave may attest a key that belongs to someone
// else.
func oePublicKey(buf []byte) ([]byte, error) {
	const field = "Open Enclave custom claims buffer"
	trimmed := bytes.TrimRight(buf, "\x00")
	// pem.Decode skips any text before the block, so the buffer must
	// start with it.
	block, rest := pem.Decode(trimmed)
	if block == nil || block.Type != "PUBLIC KEY" || len(block.Headers) != 0 || !bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		return nil, attest.Errorf(attest.ErrBinding, field, "%d bytes that are not a PEM PUBLIC KEY block", len(buf)).
			WithFix("Open Enclave certificates carry the certificate's public key in PEM as the custom claims; this evidence was produced for other data")
	}
	if rest = bytes.TrimSpace(rest); len(rest) != 0 {
		return nil, attest.Errorf(attest.ErrBinding, field, "%d bytes follow the PEM public key, but the buffer must contain only the key", len(rest)).
			WithFix("this evidence was produced for other data than the certificate's key; do not trust this peer")
	}
	return block.Bytes, nil
}

func comparePrefix(field string, reportData, want []byte, what string) error {
	if len(reportData) < len(want) || !bytes.Equal(reportData[:len(want)], want) {
		n := min(len(reportData), len(want))
		return attest.Errorf(attest.ErrBinding, field, "the first %d bytes do not equal the %s", len(want), what).
			WithValues(hex.EncodeToString(reportData[:n]), hex.EncodeToString(want)).
			WithFix("the evidence was produced for another key; do not trust this peer")
	}
	return nil
}

// unboundTail warns when a 32-byte rule leaves the rest of a longer
// report data unchecked.
func unboundTail(reportData []byte) []string {
	if len(reportData) <= 32 {
		return nil
	}
	return []string{fmt.Sprintf("report data bytes 32 to %d are not bound by the certificate's binding rule", len(reportData)-1)}
}
