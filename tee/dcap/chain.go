package dcap

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// intelRootPEM is the Intel SGX Root CA, which signs the PCK CAs and the
// TCB signing certificate. Its SHA-256 fingerprint is pinned below.
//
//go:embed intel_sgx_root_ca.pem
var intelRootPEM []byte

// IntelRootFingerprint is the SHA-256 fingerprint of the Intel SGX Root CA
// certificate.
const IntelRootFingerprint = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

// maxChainDepth bounds a certificate path. Intel's chains have three
// certificates: leaf, CA and root.
const maxChainDepth = 5

var intelRoot = mustIntelRoot()

func mustIntelRoot() *x509.Certificate {
	block, _ := pem.Decode(intelRootPEM)
	if block == nil {
		panic("dcap: embedded Intel SGX Root CA is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		panic("dcap: embedded Intel SGX Root CA: " + err.Error())
	}
	sum := sha256.Sum256(cert.Raw)
	if fmt.Sprintf("%x", sum) != IntelRootFingerprint {
		panic("dcap: embedded Intel SGX Root CA has the wrong fingerprint")
	}
	return cert
}

// EmbeddedRoots returns the vendor roots used when the caller supplies
// none: the Intel SGX Root CA.
func EmbeddedRoots() []*x509.Certificate { return []*x509.Certificate{intelRoot} }

// parsePEMChain parses the certificates of a type-5 certification data
// blob. Quoting libraries end the blob with a NUL byte, which is tolerated,
// as is any text outside the PEM blocks.
func parsePEMChain(data []byte) ([]*x509.Certificate, error) {
	data = bytes.TrimRight(data, "\x00")
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, attest.Malformed("PCK certificate chain", fmt.Sprintf("certificate %d does not parse", len(certs)+1), err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, attest.Malformed("PCK certificate chain", "the certification data holds no PEM certificate", nil)
	}
	return certs, nil
}

// checkValidity fails when cert is outside its validity window at at.
func checkValidity(role string, cert *x509.Certificate, at time.Time) error {
	if at.Before(cert.NotBefore) {
		return attest.Errorf(attest.ErrChain, role, "certificate %q is not yet valid: notBefore %s is after the verification time %s",
			cert.Subject.CommonName, cert.NotBefore.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)).
			WithFix("check the verification time (--at)")
	}
	if at.After(cert.NotAfter) {
		return attest.Errorf(attest.ErrChain, role, "certificate %q expired: notAfter %s is before the verification time %s",
			cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)).
			WithFix("obtain a current certificate from Intel PCS, or verify at a time inside its validity")
	}
	return nil
}

// verifyChain builds the path from leaf through intermediates to one of
// roots and verifies every link's signature explicitly: a parent is chosen
// by subject name, never trusted for its key identifiers alone. Each
// certificate must be valid at at, and each parent must be a CA. It returns
// the path, leaf first and root last.
func (v *Verifier) verifyChain(role string, leaf *x509.Certificate, intermediates, roots []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	// A self-issued leaf could be its own root, a path without a single
	// verified link.
	if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) {
		return nil, attest.Errorf(attest.ErrChain, role, "certificate %q is self-issued, so it cannot be an endorsed leaf", leaf.Subject.CommonName).
			WithFix("the leaf must be issued by a CA that chains to the root")
	}
	path := []*x509.Certificate{leaf}
	cur := leaf
	for depth := 0; depth < maxChainDepth; depth++ {
		if err := checkValidity(role, cur, at); err != nil {
			return nil, err
		}
		for _, root := range roots {
			if bytes.Equal(cur.Raw, root.Raw) {
				return path, nil
			}
		}
		var lastErr error
		for _, root := range roots {
			if !bytes.Equal(cur.RawIssuer, root.RawSubject) {
				continue
			}
			if lastErr = v.checkLink(cur, root); lastErr == nil {
				if err := checkValidity("root", root, at); err != nil {
					return nil, err
				}
				return append(path, root), nil
			}
		}
		var next *x509.Certificate
		for _, c := range intermediates {
			// A certificate that names itself as issuer is a root, never an
			// intermediate; roots come only from the trust anchors.
			if !bytes.Equal(cur.RawIssuer, c.RawSubject) || bytes.Equal(c.RawIssuer, c.RawSubject) || bytes.Equal(c.Raw, cur.Raw) {
				continue
			}
			if lastErr = v.checkLink(cur, c); lastErr == nil {
				next = c
				break
			}
		}
		if next == nil {
			if lastErr != nil {
				return nil, &attest.Error{Kind: attest.ErrChain, Field: role,
					Reason: fmt.Sprintf("the signature of %q does not verify under its issuer %q", cur.Subject.CommonName, cur.Issuer.CommonName),
					Err:    lastErr, Fix: "the chain was altered or belongs to another root; obtain it again from the platform or Intel PCS"}
			}
			return nil, attest.Errorf(attest.ErrChain, role, "no trusted issuer %q for %q", cur.Issuer.String(), cur.Subject.CommonName).
				WithFix("pass the Intel SGX Root CA (or, for an emulated TEE, its development root with --trust-anchor), unscoped or scoped to this quote's TEE (sgx= or tdx=)")
		}
		path = append(path, next)
		cur = next
	}
	return nil, attest.Errorf(attest.ErrChain, role, "no path to a trusted root within %d certificates", maxChainDepth)
}

// checkLink verifies child's signature under parent and that parent may
// issue certificates. A success is cached by the pair's digest; failures
// are never cached.
func (v *Verifier) checkLink(child, parent *x509.Certificate) error {
	key := pairDigest(child.Raw, parent.Raw)
	if v.cache.has(key) {
		return nil
	}
	if !parent.BasicConstraintsValid || !parent.IsCA {
		return fmt.Errorf("issuer %q is not a CA certificate", parent.Subject.CommonName)
	}
	if err := parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature); err != nil {
		return err
	}
	v.cache.put(key)
	return nil
}

func pairDigest(parts ...[]byte) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		for i := range n {
			n[i] = byte(len(p) >> (8 * i))
		}
		h.Write(n[:])
		h.Write(p)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// pckCAKind returns "processor" or "platform" from the PCK CA's common
// name, as Intel PCS names the two CAs, or "" for another issuer.
func pckCAKind(issuerCN string) string {
	low := strings.ToLower(issuerCN)
	switch {
	case strings.Contains(low, "processor"):
		return "processor"
	case strings.Contains(low, "platform"):
		return "platform"
	}
	return ""
}

// pckPublicKey returns the PCK certificate's key, which Intel's PCK
// certificate profile fixes as ECDSA P-256. QVL reads the key as a P-256
// point, and the QE report signature is ECDSA P-256 with SHA-256.
func pckPublicKey(cert *x509.Certificate) (*ecdsa.PublicKey, error) {
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); ok && pub.Curve == elliptic.P256() {
		return pub, nil
	}
	keyType := publicKeyType(cert)
	return nil, attest.Errorf(attest.ErrChain, "PCK certificate", "the leaf %q has key type %s, but a PCK certificate must have an ECDSA P-256 key", cert.Subject.CommonName, keyType).
		WithValues(keyType, "ECDSA P-256").
		WithFix("the quote's certification data must start with the platform's PCK certificate as Intel PCS issues it; collect the quote again from the platform")
}

// publicKeyType names the type of cert's public key for an error message,
// with the curve or size where there is one: "ECDSA P-384", "RSA 2048-bit".
func publicKeyType(cert *x509.Certificate) string {
	switch key := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + key.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d-bit", key.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdh.PublicKey:
		return fmt.Sprintf("%v", key.Curve())
	}
	if cert.PublicKeyAlgorithm != x509.UnknownPublicKeyAlgorithm {
		return cert.PublicKeyAlgorithm.String()
	}
	// Go leaves the key of an algorithm it does not know unparsed, so the
	// algorithm's OID is the only name there is.
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return "unparsable"
	}
	return "unknown (algorithm OID " + spki.Algorithm.Algorithm.String() + ")"
}

// Intel's certificate and CRL profiles for the PCK and TCB signing chains
// fix the key type and the signature algorithm, and QVL (CommonVerifier.cpp)
// verifies every certificate and CRL signature as ECDSA-SHA256 under the
// issuer's key read as a P-256 point.
const (
	profileKeyType   = "ECDSA P-256"
	profileSignature = x509.ECDSAWithSHA256
)

// checkIntelProfile requires every certificate of a verified path to have
// an ECDSA P-256 key and an ECDSA-SHA256 signature. roles[i] names path[i]
// in errors, except the last certificate, which is the root, and fix
// applies to every certificate but the root. Keys are checked first,
// because an issuer's key of another type also changes its subject's
// signature algorithm, and the key is the cause.
func checkIntelProfile(field string, path []*x509.Certificate, roles []string, fix string) error {
	role := func(i int) (string, string) {
		if i == len(path)-1 {
			return "root", "pass the Intel SGX Root CA as the trust anchor, or a development root with an ECDSA P-256 key that signs with ECDSA-SHA256"
		}
		if i < len(roles) {
			return roles[i], fix
		}
		return "CA", fix
	}
	for i, cert := range path {
		name, fix := role(i)
		if err := checkProfileKey(field, name, cert, fix); err != nil {
			return err
		}
	}
	for i, cert := range path {
		if cert.SignatureAlgorithm == profileSignature {
			continue
		}
		name, fix := role(i)
		alg := signatureAlgorithmName(cert.SignatureAlgorithm, cert.Raw)
		return attest.Errorf(attest.ErrChain, field, "the %s %q is signed with %s, but Intel's certificate profile requires %s",
			name, cert.Subject.CommonName, alg, profileSignature).
			WithValues(alg, profileSignature.String()).
			WithFix(fix)
	}
	return nil
}

// checkProfileKey requires cert, in the given role, to have an ECDSA P-256
// key.
func checkProfileKey(field, role string, cert *x509.Certificate, fix string) error {
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); ok && pub.Curve == elliptic.P256() {
		return nil
	}
	keyType := publicKeyType(cert)
	return attest.Errorf(attest.ErrChain, field, "the %s %q has key type %s, but Intel's certificate profile requires %s",
		role, cert.Subject.CommonName, keyType, profileKeyType).
		WithValues(keyType, profileKeyType).
		WithFix(fix)
}

// signatureAlgorithmName names a certificate's or CRL's signature
// algorithm for an error message. raw is the DER of the certificate or
// CRL, which is read only when Go does not know the algorithm, because
// then the OID is the only name there is.
func signatureAlgorithmName(alg x509.SignatureAlgorithm, raw []byte) string {
	if alg != x509.UnknownSignatureAlgorithm {
		return alg.String()
	}
	// Certificates and CRLs share this outer layout.
	var signed struct {
		TBS       asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(raw, &signed); err != nil {
		return "unparsable"
	}
	return "unknown (algorithm OID " + signed.Algorithm.Algorithm.String() + ")"
}
