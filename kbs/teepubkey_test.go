package kbs

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// teePubKeyFromClaims reads the key at the EAR path first, then at the top
// level, as Trustee does, and rejects a claim set with no key or a
// malformed one.
func TestTEEPubKeyFromClaims(t *testing.T) {
	const (
		ecKey  = `{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"AQ"}`
		rsaKey = `{"kty":"RSA","alg":"RSA-OAEP-256","n":"AA","e":"AQAB"}`
	)
	earClaims := func(key string) string {
		return `{"submods":{"cpu0":{"ear.veraison.annotated-evidence":{"runtime_data_claims":{"tee-pubkey":` + key + `}}}}}`
	}
	tests := []struct {
		name    string
		claims  string
		wantKty string
	}{
		{"EAR path", earClaims(ecKey), "EC"},
		{"top level", `{"tee-pubkey":` + rsaKey + `}`, "RSA"},
		{"EAR path before top level", `{"tee-pubkey":` + rsaKey + `,` + earClaims(ecKey)[1:], "EC"},
		{"last duplicate counts", `{"tee-pubkey":{"kty":"OKP"},"tee-pubkey":` + rsaKey + `}`, "RSA"},
		{"no key", `{"submods":{"cpu0":{"ear.status":"affirming"}}}`, ""},
		{"empty claims", `{}`, ""},
		{"runtime data not an object", `{"submods":{"cpu0":{"ear.veraison.annotated-evidence":{"runtime_data_claims":"x"}}}}`, ""},
		{"malformed key", earClaims(`{"kty":"OKP","crv":"X25519","x":"AA"}`), ""},
		{"key not an object", `{"tee-pubkey":"EC"}`, ""},
		{"key missing members", earClaims(`{"kty":"EC","crv":"P-256"}`), ""},
		{"null key", `{"tee-pubkey":null}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := jsonvalue.ParseObject([]byte(tt.claims))
			if err != nil {
				t.Fatal(err)
			}
			key, err := teePubKeyFromClaims(claims)
			if tt.wantKty == "" {
				if err == nil {
					t.Errorf("key %+v accepted, want an error", key)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if key.Kty != tt.wantKty {
				t.Errorf("kty = %q, want %q", key.Kty, tt.wantKty)
			}
		})
	}
}

// FuzzTEEPubKeyFromClaims compares teePubKeyFromClaims on indexed claims
// with the same lookup on the claims decoded by encoding/json, for any
// valid JSON object text.
func FuzzTEEPubKeyFromClaims(f *testing.F) {
	f.Add([]byte(`{"submods":{"cpu0":{"ear.veraison.annotated-evidence":{"runtime_data_claims":{"tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"AQ"}}}}}}`))
	f.Add([]byte(`{"tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"AA","e":"AQAB"},"tee-pubkey":null}`))
	f.Add([]byte(`{"submods":{"cpu0":{"ear.veraison.annotated-evidence":{"runtime_data_claims":"x"}}},"tee-pubkey":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		decoded, err := jsonvalue.DecodeObject(data)
		if err != nil {
			return
		}
		claims, err := jsonvalue.ParseEncodedObject(data)
		if err != nil {
			t.Fatalf("ParseEncodedObject(%q): %v, but DecodeObject accepts it", data, err)
		}
		got, gotErr := teePubKeyFromClaims(claims)

		want, wantErr := TEEPubKey{}, errors.New("no tee-pubkey")
		for _, ptr := range teePubKeyPointers {
			value, ok := jsonvalue.Lookup(decoded, ptr...)
			if !ok {
				continue
			}
			raw, err := json.Marshal(value)
			if err != nil {
				t.Fatal(err)
			}
			wantErr = json.Unmarshal(raw, &want)
			break
		}
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("claims %q: error = %v, want %v", data, gotErr, wantErr)
		}
		if gotErr == nil && got != want {
			t.Fatalf("claims %q: key = %+v, want %+v", data, got, want)
		}
	})
}
