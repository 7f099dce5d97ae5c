package nitro

import (
	"crypto/x509"
	"fmt"
	"strconv"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// inspection is the JSON form of an unverified attestation document.
type inspection struct {
	Tagged      bool                  `json:"cose_tagged"`
	Algorithm   string                `json:"algorithm"`
	ModuleID    string                `json:"module_id"`
	Digest      string                `json:"digest"`
	Timestamp   time.Time             `json:"timestamp"`
	PCRs        map[string]attest.Hex `json:"pcrs"`
	Certificate attest.CertInfo       `json:"certificate"`
	CABundle    []attest.CertInfo     `json:"cabundle"`
	PublicKey   attest.Hex            `json:"public_key,omitempty"`
	UserData    *attest.Hex           `json:"user_data,omitempty"`
	Nonce       *attest.Hex           `json:"nonce,omitempty"`
	Signature   attest.Hex            `json:"signature"`
}

// Inspect decodes every field of an attestation document without verifying
// it.
func (*Verifier) Inspect(data []byte) (any, error) {
	doc, err := ParseDocument(data)
	if err != nil {
		return nil, err
	}
	out := inspection{
		Tagged:    doc.Tagged,
		Algorithm: "ES384",
		ModuleID:  doc.ModuleID,
		Digest:    doc.Digest,
		Timestamp: doc.Timestamp,
		PCRs:      map[string]attest.Hex{},
		PublicKey: doc.PublicKey,
		Signature: doc.Message.Signature,
	}
	for _, i := range doc.PCRIndexes() {
		out.PCRs["pcr"+strconv.FormatUint(uint64(i), 10)] = doc.PCRs[i]
	}
	if doc.HasUserData {
		h := attest.Hex(doc.UserData)
		out.UserData = &h
	}
	if doc.HasNonce {
		h := attest.Hex(doc.Nonce)
		out.Nonce = &h
	}
	leaf, err := x509.ParseCertificate(doc.Certificate)
	if err != nil {
		return nil, attest.Malformed("certificate", "invalid X.509 certificate", err)
	}
	out.Certificate = attest.NewCertInfo("document certificate", leaf)
	for i, der := range doc.CABundle {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, attest.Malformed(fmt.Sprintf("cabundle[%d]", i), "invalid X.509 certificate", err)
		}
		out.CABundle = append(out.CABundle, attest.NewCertInfo(fmt.Sprintf("cabundle[%d]", i), c))
	}
	return out, nil
}
