package kbs

import (
	"crypto/ecdh"
	"encoding/json"
	"strings"
	"testing"
)

func TestTEEPubKeyMissingMembers(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"EC without x", `{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","y":"AA"}`, "missing or empty x;"},
		{"EC without alg and y", `{"kty":"EC","crv":"P-256","x":"AA"}`, "missing or empty alg, y;"},
		{"RSA without e", `{"kty":"RSA","alg":"RSA-OAEP-256","n":"AA"}`, "missing or empty e;"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var k TEEPubKey
			err := json.Unmarshal([]byte(tc.body), &k)
			if err == nil {
				t.Fatal("Unmarshal accepted a key with a missing member")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestDecryptIVAndTagLength(t *testing.T) {
	priv, err := GenerateKey("P-256")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := PublicKeyJWK(priv)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := Encrypt(pub, []byte("resource"))
	if err != nil {
		t.Fatal(err)
	}

	shortIV := *resp
	shortIV.IV = b64.EncodeToString(make([]byte, 8))
	if _, err := Decrypt(priv, &shortIV); err == nil || !strings.Contains(err.Error(), "iv is 8 bytes, want 12") {
		t.Errorf("Decrypt with an 8-byte iv: %v, want the iv length named", err)
	}
	longTag := *resp
	longTag.Tag = b64.EncodeToString(make([]byte, 20))
	if _, err := Decrypt(priv, &longTag); err == nil || !strings.Contains(err.Error(), "tag is 20 bytes, want 16") {
		t.Errorf("Decrypt with a 20-byte tag: %v, want the tag length named", err)
	}
}

func TestUnsupportedCurveNamed(t *testing.T) {
	priv, err := ecdh.X25519().GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ecdhJWK(priv.PublicKey())
	if err == nil || !strings.Contains(err.Error(), "X25519") {
		t.Errorf("ecdhJWK(X25519): %v, want the curve named", err)
	}
}
