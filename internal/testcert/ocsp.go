package testcert

import (
	"crypto"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
	"time"
)

// The parts of an OCSP response (RFC 6960 section 4.2.1) that OCSPJoin
// rewrites. The SingleResponses stay DER, as the parts encode them.
// They copy unexported types of package collateral, because exporting those
// would add ASN.1 internals to its API only for tests.
type (
	ocspResponse struct {
		Status   asn1.Enumerated
		Response ocspResponseBytes `asn1:"explicit,tag:0"`
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
		Responses   []asn1.RawValue
		Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
)

// oidECDSAWithSHA384 is ecdsa-with-SHA384 (RFC 5758 section 3.2).
var oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}

// OCSPJoin returns one OCSP response whose responses list contains the
// SingleResponses of every part, in the order of parts, signed with key
// under ECDSA with SHA-384. Each part is a successful basic OCSP response,
// as golang.org/x/crypto/ocsp.CreateResponse returns it, and the responder
// ID, producedAt and certificates come from the first part. key must be
// an ECDSA key, because golang.org/x/crypto/ocsp creates responses with one
// SingleResponse only and the joined response needs a new signature.
func OCSPJoin(t testing.TB, key crypto.Signer, parts ...[]byte) []byte {
	t.Helper()
	if len(parts) == 0 {
		t.Fatal("OCSPJoin: no parts")
	}
	outer, basic := decodeOCSP(t, parts[0])
	basic.TBSResponseData.Responses = nil
	for _, part := range parts {
		_, b := decodeOCSP(t, part)
		basic.TBSResponseData.Responses = append(basic.TBSResponseData.Responses, b.TBSResponseData.Responses...)
	}

	tbs, err := asn1.Marshal(basic.TBSResponseData)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha512.Sum384(tbs)
	signature, err := key.Sign(rand.Reader, digest[:], crypto.SHA384)
	if err != nil {
		t.Fatal(err)
	}
	basic.SignatureAlgorithm = pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA384}
	basic.Signature = asn1.BitString{Bytes: signature, BitLength: 8 * len(signature)}

	if outer.Response.Response, err = asn1.Marshal(basic); err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(outer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func decodeOCSP(t testing.TB, der []byte) (ocspResponse, ocspBasicResponse) {
	t.Helper()
	var outer ocspResponse
	var basic ocspBasicResponse
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatalf("OCSPJoin: part is not an OCSP response: %v", err)
	}
	if _, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
		t.Fatalf("OCSPJoin: part is not a basic OCSP response: %v", err)
	}
	return outer, basic
}
