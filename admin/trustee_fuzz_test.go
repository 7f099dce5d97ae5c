package admin

import (
	"encoding/base64"
	"testing"

	"github.com/cloister-dev/cloister/policy"
)

// FuzzTrusteeSampleProvenance checks that any sample payload is parsed or
// rejected without a panic, and that an accepted one has values.
func FuzzTrusteeSampleProvenance(f *testing.F) {
	for _, seed := range []string{`{"svn":["1"]}`, `{"a":7,"b":[true,"x"]}`, `{"svn":[]}`, `[]`, `{"a":null}`, ``} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		req := trusteeReferenceValueRequest{Version: "0.1.0", Type: "sample", Payload: base64.StdEncoding.EncodeToString([]byte(payload))}
		values, err := parseSampleProvenance(req)
		if err != nil {
			return
		}
		for name, list := range values {
			if len(list) == 0 {
				t.Errorf("accepted %q with no values for %q", payload, name)
			}
		}
	})
}

// FuzzTrusteeResourcePolicyCheck checks that any module text, sent as
// Trustee sends it, is decoded and classified or rejected without a panic.
func FuzzTrusteeResourcePolicyCheck(f *testing.F) {
	f.Add("package p\n\nallow if input.token.submods.cpu0[\"ear.status\"] == \"affirming\"\n")
	f.Add("package p\n\nallow if data.plugin == \"resource\"\n")
	f.Add("package p\nallow if {")
	f.Add("package policy\n\nallow if {\n\tinput.token.iss\n\tinput.submods.cpu0\n}\n")
	f.Fuzz(func(t *testing.T, module string) {
		decoded, err := decodeTrusteePolicy(base64.RawURLEncoding.EncodeToString([]byte(module)))
		if err != nil {
			return
		}
		policy.DetectResourceDialect(decoded)
	})
}
