package collateral

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"time"

	// The hash functions an OCSP CertID may name must be linked in for
	// crypto.Hash.New.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// OCSPValidityWithoutNextUpdate is how long after its thisUpdate an OCSP
// response without nextUpdate counts as current. RFC 6960 section 4.2.2.1
// reads a missing nextUpdate as "newer revocation information is available
// all the time", which gives an offline verifier no bound at all, so
// Cloister sets one: a response older than this must be fetched again.
const OCSPValidityWithoutNextUpdate = 12 * time.Hour

// ocspBasicOID is id-pkix-ocsp-basic (RFC 6960 section 4.2.1), the only
// response type that carries certificate statuses.
var ocspBasicOID = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}

// The ASN.1 structures of RFC 6960 section 4.2.1, decoded only as far as
// content detection, cache expiry, CertID matching and the status of each
// SingleResponse need. golang.org/x/crypto/ocsp checks the signature, but
// it reads the first SingleResponse with a certificate's serial number,
// whichever issuer its CertID names, and does not expose the issuer hashes
// of a CertID. So Cloister reads the status from the SingleResponse whose
// whole CertID it matched (see FindOCSPSingleResponse).
type (
	ocspResponseASN1 struct {
		Status   asn1.Enumerated
		Response ocspResponseBytes `asn1:"explicit,tag:0,optional"`
	}
	ocspResponseBytes struct {
		ResponseType asn1.ObjectIdentifier
		Response     []byte
	}
	ocspBasicResponse struct {
		TBSResponseData    ocspResponseData
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
		Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	ocspResponseData struct {
		Version     int `asn1:"optional,default:0,explicit,tag:0"`
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []ocspSingleASN1
		Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
	ocspSingleASN1 struct {
		CertID     ocspCertIDASN1
		CertStatus asn1.RawValue
		ThisUpdate time.Time        `asn1:"generalized"`
		NextUpdate time.Time        `asn1:"generalized,explicit,tag:0,optional"`
		Extensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
	ocspCertIDASN1 struct {
		HashAlgorithm  pkix.AlgorithmIdentifier
		IssuerNameHash []byte
		IssuerKeyHash  []byte
		SerialNumber   *big.Int
	}
)

// ocspHashes maps the CertID hash algorithms that Cloister accepts to their
// object identifiers.
var ocspHashes = []struct {
	hash crypto.Hash
	oid  asn1.ObjectIdentifier
}{
	{crypto.SHA1, asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}},
	{crypto.SHA256, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}},
	{crypto.SHA384, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}},
	{crypto.SHA512, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}},
}

// OCSPRequest names a certificate whose revocation status a verifier needs.
type OCSPRequest struct {
	// Certificate is issued by Issuer, and the chain of both verified.
	Certificate, Issuer *x509.Certificate
	// Responder is the responder URL to use when Certificate names none
	// in its authority information access extension.
	Responder string
}

// OCSPStatusError reports an OCSP response whose responseStatus is not
// successful, such as tryLater: it carries no certificate status.
type OCSPStatusError struct {
	Status int
}

func (e OCSPStatusError) Error() string {
	names := map[int]string{1: "malformedRequest", 2: "internalError", 3: "tryLater", 5: "sigRequired", 6: "unauthorized"}
	name, ok := names[e.Status]
	if !ok {
		name = fmt.Sprintf("unknown status %d", e.Status)
	}
	return "the OCSP responder returned " + name + " and no certificate status"
}

// ParseOCSPResponse decodes the SingleResponses of a successful basic OCSP
// response in DER, without checking its signature. It returns an
// OCSPStatusError for a well-formed error response.
func ParseOCSPResponse(der []byte) ([]OCSPSingleResponse, error) {
	var resp ocspResponseASN1
	rest, err := asn1.Unmarshal(der, &resp)
	if err != nil {
		// encoding/asn1 names its Go structure in the error, which does
		// not help a user find the problem in the file.
		return nil, errors.New("not a DER-encoded OCSPResponse (RFC 6960 section 4.2.1)")
	}
	if len(rest) > 0 {
		return nil, errors.New("trailing data after the OCSP response")
	}
	if resp.Status != 0 {
		return nil, OCSPStatusError{Status: int(resp.Status)}
	}
	if !resp.Response.ResponseType.Equal(ocspBasicOID) {
		return nil, fmt.Errorf("OCSP response type %v is not id-pkix-ocsp-basic", resp.Response.ResponseType)
	}

	var basic ocspBasicResponse
	rest, err = asn1.Unmarshal(resp.Response.Response, &basic)
	if err != nil {
		return nil, errors.New("the response field is not a DER-encoded BasicOCSPResponse (RFC 6960 section 4.2.1)")
	}
	if len(rest) > 0 {
		return nil, errors.New("trailing data after the basic OCSP response")
	}
	singles := basic.TBSResponseData.Responses
	if len(singles) == 0 {
		return nil, errors.New("the OCSP response contains no SingleResponse")
	}

	out := make([]OCSPSingleResponse, len(singles))
	for i, s := range singles {
		single, err := decodeSingleResponse(s)
		if err != nil {
			return nil, fmt.Errorf("SingleResponse %d of the OCSP response: %w", i, err)
		}
		single.Index = i
		out[i] = single
	}
	return out, nil
}

// CheckOCSPResponder checks that signer may sign OCSP responses about the
// certificates that issuer issued (RFC 6960 section 4.2.2.2): signer is
// issuer itself, or a delegated responder that issuer signed and gave the
// id-kp-OCSPSigning extended key usage. A delegated responder must also be
// valid at the time at, unless at is zero. It does not check the signature
// of a response.
func CheckOCSPResponder(signer, issuer *x509.Certificate, at time.Time) error {
	if bytes.Equal(signer.RawSubject, issuer.RawSubject) && bytes.Equal(signer.RawSubjectPublicKeyInfo, issuer.RawSubjectPublicKeyInfo) {
		return nil
	}
	name := strconv.Quote(signer.Subject.String())
	switch {
	case !bytes.Equal(signer.RawIssuer, issuer.RawSubject) || signer.CheckSignatureFrom(issuer) != nil:
		return fmt.Errorf("the responder certificate %s was not issued by %q", name, issuer.Subject.String())
	case !slices.Contains(signer.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning):
		return fmt.Errorf("the responder certificate %s lacks the OCSP signing extended key usage (id-kp-OCSPSigning), so %q did not delegate OCSP signing to it",
			name, issuer.Subject.String())
	case !at.IsZero() && (at.Before(signer.NotBefore) || at.After(signer.NotAfter)):
		return fmt.Errorf("the responder certificate %s is valid from %s to %s, which excludes the time %s",
			name, signer.NotBefore.UTC().Format(time.RFC3339), signer.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}

// OCSPCacheKey returns the cache key of the OCSP response for cert, issued
// by issuer: the SHA-256 of the issuer's public key and the serial number,
// so that the key does not depend on the responder's address.
func OCSPCacheKey(cert, issuer *x509.Certificate) string {
	keyBits, err := subjectPublicKeyBits(issuer)
	if err != nil {
		keyBits = issuer.RawSubjectPublicKeyInfo
	}
	return fmt.Sprintf("ocsp/%x/%s", hashOf(crypto.SHA256, keyBits), cert.SerialNumber.Text(16))
}

// subjectPublicKeyBits returns the value of the subjectPublicKey BIT STRING
// of cert, which an OCSP CertID's issuerKeyHash covers (RFC 6960 section
// 4.1.1): the key without its algorithm identifier.
func subjectPublicKeyBits(cert *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, err
	}
	return spki.PublicKey.RightAlign(), nil
}

func hashOf(h crypto.Hash, data []byte) []byte {
	w := h.New()
	w.Write(data)
	return w.Sum(nil)
}
