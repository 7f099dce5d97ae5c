package ratls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// DefaultLifetime is the validity of an issued certificate. The evidence
// inside is as old as the certificate, so the lifetime bounds how stale an
// accepted certificate's evidence can be.
const DefaultLifetime = time.Hour

// formatTags maps an evidence format to the CBOR tag of the tagged-evidence
// extension. Formats without a tag cannot be carried.
var formatTags = map[string]uint64{
	"snp":  TagSNPReport,
	"sgx":  TagIntelQuoteGramine,
	"tdx":  TagIntelQuoteGramine,
	"dcap": TagIntelQuoteGramine,
}

// quoteFormats are the verifier names of Intel SGX and TDX quotes, the
// evidence of the Intel tags and of the Gramine legacy and Open Enclave
// layouts.
var quoteFormats = map[string]bool{"dcap": true, "sgx": true, "tdx": true}

// formatMatchesTag reports whether evidence of the detected format may
// travel under the CBOR tag, so that a tag naming one TEE cannot carry
// another TEE's evidence.
func formatMatchesTag(format string, tag uint64) bool {
	if tag == TagIntelQuoteGramine || tag == TagIntelQuote {
		return quoteFormats[format]
	}
	t, ok := formatTags[format]
	return ok && t == tag
}

// tagForFormat returns the CBOR tag for an attester's evidence format.
func tagForFormat(format string) (uint64, error) {
	if tag, ok := formatTags[format]; ok {
		return tag, nil
	}
	// TODO: Nitro, TPM and token evidence have no registered tag in the
	// tagged-evidence extension yet, so they cannot back a certificate.
	return 0, attest.Errorf(attest.ErrUnsupported, "evidence format", "%q has no CBOR tag for the tagged-evidence extension", format).
		WithFix("use an SEV-SNP, SGX or TDX attester for RA-TLS")
}

// IssueOptions are the parameters of a certificate issued by Issue.
type IssueOptions struct {
	// Role is the end of the connection the certificate is for; the zero
	// value is RoleServer.
	Role Role
	// Lifetime is the certificate validity; zero means DefaultLifetime.
	Lifetime time.Duration
	// Hosts are DNS names or IP addresses for the subjectAltName. RA-TLS
	// clients identify the peer by its evidence, not by name, but some
	// tools want a name.
	Hosts []string
	// Now returns the issuance time; nil means time.Now.
	Now func() time.Time
}

// Issue generates a fresh ECDSA P-256 key, requests evidence from attester
// whose report data binds the key (see the package documentation for the
// rule) and returns a self-signed certificate that carries the evidence.
func Issue(ctx context.Context, attester attest.Attester, o IssueOptions) (*tls.Certificate, error) {
	role := o.Role
	if role == "" {
		role = RoleServer
	}
	if role != RoleServer && role != RoleClient {
		return nil, fmt.Errorf("ratls: invalid role %q: use %q or %q", role, RoleServer, RoleClient)
	}
	lifetime := o.Lifetime
	if lifetime <= 0 {
		lifetime = DefaultLifetime
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ratls: generating key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ratls: encoding public key: %w", err)
	}
	spkiHash := sha256.Sum256(spki)
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("ratls: reading nonce: %w", err)
	}
	issued := now().Truncate(time.Second)

	claims, err := marshalClaims(spkiHash[:], nonce, issued.Unix(), role)
	if err != nil {
		return nil, fmt.Errorf("ratls: encoding claims: %w", err)
	}
	ev, err := attester.Attest(ctx, certReportData(claims))
	if err != nil {
		return nil, fmt.Errorf("ratls: collecting evidence from %s: %w", attester.Name(), err)
	}
	exts, err := evidenceExtensions(ev, claims)
	if err != nil {
		return nil, err
	}

	tmpl, err := certTemplate(issued, lifetime, o.Hosts, attester.Name())
	if err != nil {
		return nil, err
	}
	tmpl.ExtraExtensions = exts
	if role == RoleClient {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ratls: creating certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ratls: parsing the new certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// evidenceExtensions encodes ev and the claims buffer as the tagged-evidence
// extension, and ev.Aux, when present, as the endorsement extension.
func evidenceExtensions(ev *attest.Evidence, claims []byte) ([]pkix.Extension, error) {
	tag, err := tagForFormat(ev.Format)
	if err != nil {
		return nil, err
	}
	value, err := encMode.Marshal(cborTag(tag, []any{ev.Data, claims}))
	if err != nil {
		return nil, fmt.Errorf("ratls: encoding tagged evidence: %w", err)
	}
	exts := []pkix.Extension{{Id: OIDTaggedEvidence, Value: value}}
	if len(ev.Aux) > 0 {
		aux, err := encMode.Marshal(cborTag(tag, ev.Aux))
		if err != nil {
			return nil, fmt.Errorf("ratls: encoding endorsements: %w", err)
		}
		exts = append(exts, pkix.Extension{Id: OIDEndorsementManifest, Value: aux})
	}
	return exts, nil
}

func certTemplate(issued time.Time, lifetime time.Duration, hosts []string, attester string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("ratls: generating serial number: %w", err)
	}
	name := pkix.Name{CommonName: "Cloister RA-TLS", Organization: []string{"Cloister"}, OrganizationalUnit: []string{attester}}
	if strings.HasPrefix(attester, "emulated") {
		// The label follows the certificate wherever it is shown.
		name.OrganizationalUnit = []string{attester + " (emulated TEE, proves no hardware)"}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		NotBefore:             issued,
		NotAfter:              issued.Add(lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl, nil
}
