package kbs

import (
	"strings"
	"testing"
)

// /auth and /attest bodies match member names exactly and reject a
// repeated member, as Trustee's serde types do. encoding/json would match
// "Version" to version and keep the last of two copies, where other JSON
// readers keep the first, so one body could mean two things.
func TestParseRequestStrictMembers(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
	}{
		{"names in other case", `{"Version":"0.4.0","TEE":"snp","Extra-Params":""}`, "missing member version"},
		{"tee in other case", `{"version":"0.4.0","Tee":"snp","extra-params":""}`, `unknown tee ""`},
		{"extra-params in other case", `{"version":"0.4.0","tee":"snp","EXTRA-PARAMS":""}`, "missing member extra-params"},
		{"repeated version", `{"version":"0.4.0","version":"0.4.0","tee":"snp","extra-params":""}`, "member version occurs more than once"},
		{"repeated tee", `{"version":"0.4.0","tee":"sample","tee":"snp","extra-params":""}`, "member tee occurs more than once"},
		{"repeated extra-params", `{"version":"0.4.0","tee":"snp","extra-params":"","extra-params":{}}`, "member extra-params occurs more than once"},
		{"repeated through an escape", `{"version":"0.4.0","tee":"snp","t\u0065e":"snp","extra-params":""}`, "member tee occurs more than once"},
		{"unknown member", `{"version":"0.4.0","tee":"snp","extra-params":"","VERSION":"1.0.0"}`, ""},
		{"escaped name", `{"v\u0065rsion":"0.4.0","tee":"snp","extra-params":""}`, ""},
		{"repeat inside extra-params", `{"version":"0.4.0","tee":"snp","extra-params":{"a":1,"a":2}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRequest([]byte(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if r.Version != ProtocolVersion || r.TEE != "snp" {
					t.Errorf("request = %+v", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseAttestationStrictMembers(t *testing.T) {
	evidence := `"tee-evidence":{"primary_evidence":1}`
	tests := []struct {
		name, body, wantErr string
	}{
		{"repeated runtime-data", `{"runtime-data":` + runtimeJSON + `,"runtime-data":` + runtimeJSON + `,` + evidence + `}`, "member runtime-data occurs more than once"},
		{"repeated tee-evidence", `{"runtime-data":` + runtimeJSON + `,` + evidence + `,` + evidence + `}`, "member tee-evidence occurs more than once"},
		{"repeated init-data", `{"init-data":null,"init-data":{"format":"toml","body":"b"},"runtime-data":` + runtimeJSON + `,` + evidence + `}`, "member init-data occurs more than once"},
		{"repeated nonce", `{"runtime-data":{"nonce":"a","nonce":"b","tee-pubkey":` + ecKeyJSON + `},` + evidence + `}`, "member runtime-data.nonce occurs more than once"},
		{"repeated tee-pubkey", `{"runtime-data":{"nonce":"a","tee-pubkey":` + rsaKeyJSON + `,"tee-pubkey":` + ecKeyJSON + `},` + evidence + `}`, "member runtime-data.tee-pubkey occurs more than once"},
		{"repeated kty", `{"runtime-data":{"nonce":"a","tee-pubkey":{"kty":"RSA",` + ecKeyJSON[1:] + `},` + evidence + `}`, "member runtime-data.tee-pubkey.kty occurs more than once"},
		{"repeated x", `{"runtime-data":{"nonce":"a","tee-pubkey":{"x":"AA",` + ecKeyJSON[1:] + `},` + evidence + `}`, "member runtime-data.tee-pubkey.x occurs more than once"},
		{"repeated primary_evidence", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1,"primary_evidence":2}}`, "member tee-evidence.primary_evidence occurs more than once"},
		{"repeated additional_evidence", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1,"additional_evidence":"","additional_evidence":"{}"}}`, "member tee-evidence.additional_evidence occurs more than once"},
		{"repeated init-data body", `{"init-data":{"format":"toml","body":"a","body":"b"},"runtime-data":` + runtimeJSON + `,` + evidence + `}`, "member init-data.body occurs more than once"},
		{"runtime-data in other case", `{"Runtime-Data":` + runtimeJSON + `,` + evidence + `}`, "missing runtime-data.nonce"},
		{"nonce in other case", `{"runtime-data":{"Nonce":"a","tee-pubkey":` + ecKeyJSON + `},` + evidence + `}`, "missing runtime-data.nonce"},
		{"kelvin sign in tee-pubkey", `{"runtime-data":{"nonce":"a","tee-pub\u212aey":` + ecKeyJSON + `},` + evidence + `}`, "missing runtime-data.tee-pubkey"},
		{"kty in other case", `{"runtime-data":{"nonce":"a","tee-pubkey":{"KTY":"EC","crv":"P-256","alg":"A","x":"x","y":"y"}},` + evidence + `}`, `kty "" is not EC or RSA`},
		{"tee-evidence in other case", `{"runtime-data":` + runtimeJSON + `,"TEE-EVIDENCE":{"primary_evidence":1}}`, "missing tee-evidence.primary_evidence"},
		{"primary_evidence in other case", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"Primary_Evidence":1}}`, "missing tee-evidence.primary_evidence"},
		{"escaped names", `{"runtime\u002ddata":` + runtimeJSON + `,"\u0074ee-evidence":{"primary_evidenc\u0065":1}}`, ""},
		{"unknown members", `{"x":1,"runtime-data":{"nonce":"a","q":2,"tee-pubkey":{"d":"AA",` + ecKeyJSON[1:] + `},` + evidence + `}`, ""},
		{"repeat inside primary_evidence", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":{"a":1,"a":2}}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAttestation([]byte(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
