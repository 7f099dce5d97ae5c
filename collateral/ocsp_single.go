package collateral

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspRevokedInfoASN1 is RevokedInfo, the revoked alternative of
// CertStatus, under its implicit tag [1] (RFC 6960 section 4.2.1).
type ocspRevokedInfoASN1 struct {
	RevocationTime   time.Time       `asn1:"generalized"`
	RevocationReason asn1.Enumerated `asn1:"explicit,tag:0,optional"`
}

// The tags of the CertStatus alternatives (RFC 6960 section 4.2.1).
const (
	certStatusGood    = 0
	certStatusRevoked = 1
	certStatusUnknown = 2
)

// OCSPCertID identifies the certificate that one OCSP SingleResponse is
// about (RFC 6960 section 4.1.1): hashes of its issuer's name and public key,
// and its serial number.
type OCSPCertID struct {
	// Hash is the algorithm of both issuer hashes, or 0 when the response
	// names one that Cloister does not accept.
	Hash           crypto.Hash
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	SerialNumber   *big.Int
}

// Matches reports whether id names cert as issued by issuer: the serial
// numbers are equal and the hashes of the issuer's subject and public key
// are those of the CertID.
func (id OCSPCertID) Matches(cert, issuer *x509.Certificate) bool {
	if id.Hash == 0 || id.SerialNumber == nil || id.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		return false
	}
	keyBits, err := subjectPublicKeyBits(issuer)
	if err != nil {
		return false
	}
	return bytes.Equal(hashOf(id.Hash, issuer.RawSubject), id.IssuerNameHash) &&
		bytes.Equal(hashOf(id.Hash, keyBits), id.IssuerKeyHash)
}

// OCSPSingleResponse is one SingleResponse of an OCSP response: the
// certificate it is about, its status and its period. The status counts
// only once the signature of the whole response is checked.
type OCSPSingleResponse struct {
	// Index is the position of the SingleResponse in the response's
	// responses list, from 0.
	Index  int
	CertID OCSPCertID
	// Status is ocsp.Good, ocsp.Revoked or ocsp.Unknown, the values of
	// golang.org/x/crypto/ocsp.
	Status int
	// RevokedAt and RevocationReason (a CRLReason code, 0 when the
	// response names none) are set when Status is ocsp.Revoked.
	RevokedAt        time.Time
	RevocationReason int
	ThisUpdate       time.Time
	// NextUpdate is zero when the response names none.
	NextUpdate time.Time
	// criticalExtension is the first critical single extension, which
	// Cloister does not understand, or nil.
	criticalExtension asn1.ObjectIdentifier
}

// ValidUntil returns the end of the period in which the response is
// current: its nextUpdate, or OCSPValidityWithoutNextUpdate after its
// thisUpdate when it has none.
func (s OCSPSingleResponse) ValidUntil() time.Time {
	if s.NextUpdate.IsZero() {
		return s.ThisUpdate.Add(OCSPValidityWithoutNextUpdate)
	}
	return s.NextUpdate
}

// decodeSingleResponse decodes the CertID, status and period of s.
func decodeSingleResponse(s ocspSingleASN1) (OCSPSingleResponse, error) {
	id := OCSPCertID{IssuerNameHash: s.CertID.IssuerNameHash, IssuerKeyHash: s.CertID.IssuerKeyHash, SerialNumber: s.CertID.SerialNumber}
	for _, h := range ocspHashes {
		if s.CertID.HashAlgorithm.Algorithm.Equal(h.oid) {
			id.Hash = h.hash
		}
	}
	if id.SerialNumber == nil {
		return OCSPSingleResponse{}, errors.New("the CertID has no serial number")
	}
	out := OCSPSingleResponse{CertID: id, ThisUpdate: s.ThisUpdate, NextUpdate: s.NextUpdate}
	for _, ext := range s.Extensions {
		if ext.Critical && out.criticalExtension == nil {
			out.criticalExtension = ext.Id
		}
	}
	if err := out.decodeCertStatus(s.CertStatus); err != nil {
		return OCSPSingleResponse{}, err
	}
	return out, nil
}

// decodeCertStatus sets the status from the CertStatus CHOICE: good [0]
// and unknown [2] are implicitly tagged NULLs, revoked [1] an implicitly
// tagged RevokedInfo.
func (s *OCSPSingleResponse) decodeCertStatus(raw asn1.RawValue) error {
	if raw.Class != asn1.ClassContextSpecific {
		return fmt.Errorf("invalid certStatus: tag class %d, expected context-specific", raw.Class)
	}
	switch {
	case raw.Tag == certStatusGood && !raw.IsCompound && len(raw.Bytes) == 0:
		s.Status = ocsp.Good
	case raw.Tag == certStatusUnknown && !raw.IsCompound && len(raw.Bytes) == 0:
		s.Status = ocsp.Unknown
	case raw.Tag == certStatusRevoked && raw.IsCompound:
		var info ocspRevokedInfoASN1
		rest, err := asn1.UnmarshalWithParams(raw.FullBytes, &info, "tag:1")
		if err != nil || len(rest) > 0 {
			return errors.New("invalid certStatus: revoked is not a DER-encoded RevokedInfo")
		}
		s.Status, s.RevokedAt, s.RevocationReason = ocsp.Revoked, info.RevocationTime, int(info.RevocationReason)
	default:
		return fmt.Errorf("invalid certStatus: tag [%d], expected good [0], revoked [1] or unknown [2]", raw.Tag)
	}
	return nil
}

// ErrNoOCSPSingleResponse reports an OCSP response with no SingleResponse
// about the certificate in question.
var ErrNoOCSPSingleResponse = errors.New("no SingleResponse of the OCSP response is about the certificate")

// FindOCSPSingleResponse returns the SingleResponse of singles whose CertID
// names cert as issued by issuer (see OCSPCertID.Matches), wherever it is
// in the list, or ErrNoOCSPSingleResponse when none does. It rejects a
// SingleResponse about cert with a critical single extension, because
// Cloister understands none, as golang.org/x/crypto/ocsp does for the entry
// it reads. Such an extension in an entry about another certificate does
// not matter.
//
// A responder may return several SingleResponses about cert, for example
// for a request that lists the certificate twice or with two hash
// algorithms. They must then agree on the status, the revocation time and
// reason, and the period, and the first is returned. Otherwise the response
// is rejected as ambiguous, because the status would depend on which entry
// a verifier reads.
func FindOCSPSingleResponse(singles []OCSPSingleResponse, cert, issuer *x509.Certificate) (OCSPSingleResponse, error) {
	var found []OCSPSingleResponse
	for _, s := range singles {
		if s.CertID.Matches(cert, issuer) {
			found = append(found, s)
		}
	}
	if len(found) == 0 {
		return OCSPSingleResponse{}, ErrNoOCSPSingleResponse
	}
	for _, s := range found {
		if s.criticalExtension != nil {
			return OCSPSingleResponse{}, fmt.Errorf("SingleResponse %d of the OCSP response, about certificate %q (serial %s), has the unsupported critical extension %v; "+
				"use a response from the certificate's OCSP responder without it", s.Index, cert.Subject.String(), cert.SerialNumber.Text(16), s.criticalExtension)
		}
	}
	for _, other := range found[1:] {
		if !found[0].sameStatus(other) {
			return OCSPSingleResponse{}, fmt.Errorf("the OCSP response is ambiguous: its SingleResponses %d (%s) and %d (%s) are both about certificate %q (serial %s) but differ; "+
				"use a response from the certificate's OCSP responder that gives one status per certificate",
				found[0].Index, found[0].describe(), other.Index, other.describe(), cert.Subject.String(), cert.SerialNumber.Text(16))
		}
	}
	return found[0], nil
}

// sameStatus reports whether s and o give the same status for the same
// period.
func (s OCSPSingleResponse) sameStatus(o OCSPSingleResponse) bool {
	return s.Status == o.Status && s.RevokedAt.Equal(o.RevokedAt) && s.RevocationReason == o.RevocationReason &&
		s.ThisUpdate.Equal(o.ThisUpdate) && s.NextUpdate.Equal(o.NextUpdate)
}

// describe names the status and period of s for messages.
func (s OCSPSingleResponse) describe() string {
	status := "good"
	switch s.Status {
	case ocsp.Revoked:
		status = fmt.Sprintf("revoked since %s, reason code %d", s.RevokedAt.UTC().Format(time.RFC3339), s.RevocationReason)
	case ocsp.Unknown:
		status = "unknown"
	}
	period := "thisUpdate " + s.ThisUpdate.UTC().Format(time.RFC3339)
	if !s.NextUpdate.IsZero() {
		period += ", nextUpdate " + s.NextUpdate.UTC().Format(time.RFC3339)
	}
	return status + ", " + period
}
