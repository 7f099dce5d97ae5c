package azurevtpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// RuntimeData is the HCL variable data: the vTPM keys, the VM
// configuration and the user data.
type RuntimeData struct {
	Keys            []json.RawMessage `json:"keys"`
	VMConfiguration map[string]any    `json:"vm-configuration"`
	UserData        string            `json:"user-data"`
}

// akKeyID is the key ID of the vTPM attestation key in the runtime data.
const akKeyID = "HCLAkPub"

// ParseRuntimeData decodes the runtime data JSON. A repeated member name
// is rejected at any depth: encoding/json keeps the last one, and other
// readers keep the first or reject the document, so it would name another
// AK or user data for them.
func ParseRuntimeData(b []byte) (*RuntimeData, error) {
	const field = "hcl_report.variable_data"
	if err := jsonvalue.WalkMembers(b, nil); err != nil {
		var dup *jsonvalue.DuplicateMemberError
		if errors.As(err, &dup) {
			return nil, attest.Malformed(field, fmt.Sprintf("repeats the member %q, so JSON readers disagree on its value", dup.Name), nil)
		}
		return nil, attest.Malformed(field, "is not the runtime data JSON", err)
	}
	var rd RuntimeData
	if err := json.Unmarshal(b, &rd); err != nil {
		return nil, attest.Malformed(field, "is not the runtime data JSON", err)
	}
	return &rd, nil
}

// AK returns the public key of the JWK whose kid is HCLAkPub, which must
// be the only one.
func (rd *RuntimeData) AK() (crypto.PublicKey, error) {
	var found []json.RawMessage
	for _, raw := range rd.Keys {
		var head struct {
			Kid string `json:"kid"`
		}
		if json.Unmarshal(raw, &head) == nil && head.Kid == akKeyID {
			found = append(found, raw)
		}
	}
	if len(found) > 1 {
		return nil, attest.Malformed("hcl_report.variable_data.keys", fmt.Sprintf("%d keys with kid %s, so the vTPM attestation key is ambiguous", len(found), akKeyID), nil)
	}
	for _, raw := range found {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			return nil, attest.Malformed("hcl_report.variable_data.keys."+akKeyID, "is not a valid JWK", err)
		}
		switch key := jwk.Key.(type) {
		case *rsa.PublicKey:
			return key, nil
		case *ecdsa.PublicKey:
			return key, nil
		}
		return nil, attest.Errorf(attest.ErrUnsupported, "hcl_report.variable_data.keys."+akKeyID, "the AK is a %T, not an RSA or ECDSA public key", jwk.Key)
	}
	return nil, attest.Malformed("hcl_report.variable_data.keys", "no key with kid "+akKeyID+", so the vTPM attestation key is unknown", nil)
}
