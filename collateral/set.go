package collateral

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"slices"
	"sync"
	"time"
)

// Kind is the type of a collateral item, found from its content.
type Kind string

const (
	KindCertificate Kind = "certificate"
	KindCRL         Kind = "crl"
	KindPublicKey   Kind = "public_key"
	// KindTCBInfo is an Intel PCS TCB Info body {"tcbInfo":…,"signature":…}.
	KindTCBInfo Kind = "tcb_info"
	// KindQEIdentity is an Intel PCS QE or TD QE Identity body
	// {"enclaveIdentity":…,"signature":…}.
	KindQEIdentity Kind = "qe_identity"
	// KindJWKS is a JSON Web Key Set or a single JSON Web Key.
	KindJWKS Kind = "jwks"
	// KindJSON is any other JSON document, kept for TEE packages that know
	// its shape.
	KindJSON Kind = "json"
	// KindXML is an XML document, such as an NVIDIA reference integrity
	// manifest (a signed SWID tag), kept for TEE packages that know its
	// shape.
	KindXML Kind = "xml"
	// KindOCSP is a successful basic OCSP response (RFC 6960) in DER, as
	// an OCSP responder returns it.
	KindOCSP Kind = "ocsp"
)

// Item is one collateral item with its origin and digest.
type Item struct {
	Kind Kind
	// Source is the file the item came from, or the URL it was fetched
	// from.
	Source string
	// Raw is the item's encoding: DER for certificates, CRLs, public keys
	// and OCSP responses, and the text for JSON and XML documents.
	Raw    []byte
	SHA256 [32]byte

	// Exactly one of these is set, matching Kind. JSON, XML and OCSP
	// kinds keep only Raw.
	Certificate *x509.Certificate
	CRL         *x509.RevocationList
	PublicKey   any

	// Fetched marks an item that an online source fetched from an
	// upstream rather than one the caller supplied. A fetched self-signed
	// certificate is never a trust anchor, so SelfSigned leaves it out.
	Fetched bool

	// TEEs are the evidence types ("snp", "tdx", ...) that the item
	// serves, or empty for every type. A root scoped to one TEE so never
	// anchors another TEE's chain.
	TEEs []string

	// selfSigned caches IsSelfSigned for Certificate, because a service
	// reuses one set for many verifications and the check costs a
	// signature verification.
	selfSignedOnce sync.Once
	selfSigned     bool
}

// IsSelfSignedCertificate reports whether the item is a self-signed
// certificate. The signature check runs once per item.
func (it *Item) IsSelfSignedCertificate() bool {
	if it.Certificate == nil {
		return false
	}
	it.selfSignedOnce.Do(func() { it.selfSigned = IsSelfSigned(it.Certificate) })
	return it.selfSigned
}

// Set is a collection of collateral items.
type Set struct {
	Items []*Item
	// Ignored lists files that held no collateral, with the reason, so
	// that a user can see why a file was not used.
	Ignored []string
	// Unserved lists the items an online source requested and did not
	// get, each as its cache key and the reason ("kds/vcek/...: not found
	// upstream"), so that a verifier can name them when collateral is
	// missing.
	Unserved []string
}

// Add appends an item, filling in its digest.
func (s *Set) Add(it *Item) {
	it.SHA256 = sha256.Sum256(it.Raw)
	s.Items = append(s.Items, it)
}

// Merge appends every item of other to s.
func (s *Set) Merge(other *Set) {
	if other == nil {
		return
	}
	s.Items = append(s.Items, other.Items...)
	s.Ignored = append(s.Ignored, other.Ignored...)
	s.Unserved = append(s.Unserved, other.Unserved...)
}

// ScopeTo limits every item of s to the evidence types tees, replacing any
// earlier scope. Sets that Merge built share their items, so call it on a
// freshly loaded set before merging it.
func (s *Set) ScopeTo(tees []string) {
	for _, it := range s.Items {
		it.TEEs = slices.Clone(tees)
	}
}

// ServesTEE reports whether the item serves evidence of type tee.
func (it *Item) ServesTEE(tee string) bool {
	return len(it.TEEs) == 0 || slices.Contains(it.TEEs, tee)
}

// ForTEE returns the items of s that serve evidence of type tee, with the
// lists of s. It returns s itself when every item does, so that an
// unscoped set costs no copy.
func (s *Set) ForTEE(tee string) *Set {
	if s == nil {
		return nil
	}
	i := slices.IndexFunc(s.Items, func(it *Item) bool { return !it.ServesTEE(tee) })
	if i < 0 {
		return s
	}
	out := &Set{Items: slices.Clone(s.Items[:i]), Ignored: s.Ignored, Unserved: s.Unserved}
	for _, it := range s.Items[i+1:] {
		if it.ServesTEE(tee) {
			out.Items = append(out.Items, it)
		}
	}
	return out
}

// OfKind returns the items of kind k, in load order.
func (s *Set) OfKind(k Kind) []*Item {
	if s == nil {
		return nil
	}
	var out []*Item
	for _, it := range s.Items {
		if it.Kind == k {
			out = append(out, it)
		}
	}
	return out
}

// Certificates returns every certificate in the set.
func (s *Set) Certificates() []*x509.Certificate {
	var out []*x509.Certificate
	for _, it := range s.OfKind(KindCertificate) {
		out = append(out, it.Certificate)
	}
	return out
}

// SelfSigned returns the self-signed certificates in the set that the
// caller supplied: the candidates for trust anchors. Fetched items are left
// out, because an upstream is not a trust anchor.
func (s *Set) SelfSigned() []*x509.Certificate {
	var out []*x509.Certificate
	for _, it := range s.OfKind(KindCertificate) {
		if !it.Fetched && it.IsSelfSignedCertificate() {
			out = append(out, it.Certificate)
		}
	}
	return out
}

// CRLs returns every CRL in the set.
func (s *Set) CRLs() []*x509.RevocationList {
	var out []*x509.RevocationList
	for _, it := range s.OfKind(KindCRL) {
		out = append(out, it.CRL)
	}
	return out
}

// IsSelfSigned reports whether cert names itself as issuer and its signature
// verifies under its own key.
func IsSelfSigned(cert *x509.Certificate) bool {
	if string(cert.RawIssuer) != string(cert.RawSubject) {
		return false
	}
	return cert.CheckSignatureFrom(cert) == nil
}

// Query describes the collateral a verifier needs for one piece of evidence.
// Offline sources ignore it and return everything they hold; online sources
// use it to choose what to fetch.
type Query struct {
	// TEE is the evidence type ("snp", "sgx", "tdx").
	TEE string
	// At is the verification time. A source must not return an item that
	// is stale at that time when a fresh one can be had.
	At time.Time

	// SEV-SNP: the product from the report or certificate, the signing key
	// type (VCEK or VLEK), the chip ID and the REPORTED_TCB.
	Product     string
	SigningKey  string
	ChipID      []byte
	ReportedTCB uint64

	// DCAP: FMSPC and PCE ID from the PCK certificate (hexadecimal), and
	// the PCK CA ("processor" or "platform").
	FMSPC string
	PCEID string
	PCKCA string

	// OCSP lists certificates whose revocation status the verifier needs,
	// known only once their chains verified. An online source fetches an
	// OCSP response for each. NVIDIA GPU verification requests the responses
	// for its device and RIM signing chains with a second query that sets
	// only this field.
	OCSP []OCSPRequest
}

// Source provides collateral for a query.
type Source interface {
	// Collateral returns the items that may serve q. An error means the
	// source failed, not that an item is absent: a missing item is simply
	// not in the returned set, and the verifier reports it by name.
	Collateral(ctx context.Context, q Query) (*Set, error)
}

// Collateral returns s itself: an offline set serves every query.
func (s *Set) Collateral(context.Context, Query) (*Set, error) {
	if s == nil {
		return &Set{}, nil
	}
	return s, nil
}
