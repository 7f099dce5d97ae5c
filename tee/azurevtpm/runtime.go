package azurevtpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
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

// ParseRuntimeData decodes the runtime data JSON.
func ParseRuntimeData(b []byte) (*RuntimeData, error) {
	var rd RuntimeData
	if err := json.Unmarshal(b, &rd); err != nil {
		return nil, attest.Malformed("hcl_report.variable_data", "is not the runtime data JSON", err)
	}
	return &rd, nil
}

// AK returns the public key of the JWK whose kid is HCLAkPub.
func (rd *RuntimeData) AK() (crypto.PublicKey, error) {
	for _, raw := range rd.Keys {
		var head struct {
			Kid string `json:"kid"`
		}
		if json.Unmarshal(raw, &head) != nil || head.Kid != akKeyID {
			continue
		}
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
