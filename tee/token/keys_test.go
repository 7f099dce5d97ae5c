package token

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// TestSigningKeyFitsAlgorithm rejects a token whose key is an RSA key of
// fewer than 2048 bits (RFC 7518, sections 3.3 and 3.5) or no RSA key at
// all. The key may come from the JWKS or from the x5c leaf, and the error
// names its size or type.
func TestSigningKeyFitsAlgorithm(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakService := &testService{key: weak, kid: "key-1"}
	ec := testcert.ECDSAKey(t, elliptic.P256())
	ecJWKS, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &ec.PublicKey, KeyID: "key-1", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}

	rootKey := testcert.ECDSAKey(t, elliptic.P256())
	root := issue(t, pkix.Name{CommonName: "test token root"}, &rootKey.PublicKey, nil, rootKey, true)
	weakLeaf := issue(t, pkix.Name{CommonName: "weak token signing"}, &weak.PublicKey, root, rootKey, false)

	strong := newService(t)
	cases := []struct {
		name  string
		token string
		doc   []byte
		want  []string
	}{
		{"1024-bit RSA key in the JWKS", weakService.sign(t, jose.RS256, gcpClaims(), nil), weakService.jwks(t, "RS256"),
			[]string{"1024-bit RSA key", "at least 2048 bits", `kid "key-1"`}},
		{"1024-bit RSA key in the x5c leaf", weakService.sign(t, jose.RS256, gcpClaims(), x5cHeader([]*x509.Certificate{weakLeaf, root})), root.Raw,
			[]string{"1024-bit RSA key", "at least 2048 bits", "weak token signing"}},
		{"ECDSA key for RS256", strong.sign(t, jose.RS256, gcpClaims(), nil), ecJWKS,
			[]string{"ECDSA key", "RS256 needs an RSA key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyWith(t, GCP, tc.token, setOf(t, tc.doc), nil)
			if !errors.Is(err, attest.ErrSignature) {
				t.Fatalf("error %v, want a signature error", err)
			}
			for _, part := range tc.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}

	if _, err := verifyWith(t, GCP, strong.sign(t, jose.RS256, gcpClaims(), nil), setOf(t, strong.jwks(t, "RS256")), nil); err != nil {
		t.Errorf("2048-bit RSA key rejected: %v", err)
	}
}

// TestJWKKeyOps uses a JWK for verification only when its key_ops member
// (RFC 7517, section 4.3), if present, lists "verify".
func TestJWKKeyOps(t *testing.T) {
	s := newService(t)
	token := s.sign(t, jose.RS256, gcpClaims(), nil)
	withOps := func(ops any) []byte {
		raw, err := json.Marshal(jose.JSONWebKey{Key: &s.key.PublicKey, KeyID: s.kid})
		if err != nil {
			t.Fatal(err)
		}
		var member map[string]any
		if err := json.Unmarshal(raw, &member); err != nil {
			t.Fatal(err)
		}
		member["key_ops"] = ops
		doc, err := json.Marshal(map[string]any{"keys": []any{member}})
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	cases := []struct {
		name string
		ops  any
		ok   bool
	}{
		{"verify", []string{"verify"}, true},
		{"sign and verify", []string{"sign", "verify"}, true},
		{"encrypt only", []string{"encrypt"}, false},
		{"sign only", []string{"sign"}, false},
		{"empty list", []string{}, false},
		{"not a list", "verify", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyWith(t, GCP, token, setOf(t, withOps(tc.ops)), nil)
			if tc.ok {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, attest.ErrCollateralMissing) {
				t.Errorf("error %v, want collateral missing (no usable key)", err)
			}
		})
	}
}

// TestSkippedKeyReasons checks that a rejection names why each supplied
// key was skipped, by kid and source, without printing key material.
func TestSkippedKeyReasons(t *testing.T) {
	s := newService(t)
	token := s.sign(t, jose.RS256, gcpClaims(), nil)
	impostor := rsaKey(t, 1)
	ec := testcert.ECDSAKey(t, elliptic.P256())
	jwksOf := func(keys ...jose.JSONWebKey) []byte {
		raw, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	otherKid := jose.JSONWebKey{Key: &impostor.PublicKey, KeyID: "key-2", Use: "sig"}
	otherAlg := jose.JSONWebKey{Key: &s.key.PublicKey, KeyID: "key-1", Algorithm: "PS256", Use: "sig"}
	encryption := jose.JSONWebKey{Key: &s.key.PublicKey, KeyID: "key-1", Use: "enc"}
	wrongType := jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "key-1", Use: "sig"}
	wrongKey := jose.JSONWebKey{Key: &impostor.PublicKey, KeyID: "key-1", Algorithm: "RS256", Use: "sig"}

	cases := []struct {
		name string
		doc  []byte
		kind error
		want []string
	}{
		{"no key matches", jwksOf(otherKid, otherAlg, encryption), attest.ErrCollateralMissing, []string{
			"(3 keys supplied)",
			`kid "key-2" from doc0: kid mismatch`,
			`kid "key-1" from doc0: algorithm mismatch: the key is for PS256, the token uses RS256`,
			`kid "key-1" from doc0: use "enc", not sig`,
		}},
		{"every matching key fails", jwksOf(otherKid, wrongType, wrongKey), attest.ErrSignature, []string{
			"none of the 3 supplied keys verifies the token",
			`kid "key-2" from doc0: kid mismatch`,
			`kid "key-1" from doc0: key type mismatch: the key is an ECDSA key, but RS256 needs an RSA key`,
			"the last one failed: invalid signature: signature: the RS256 signature does not verify",
		}},
		{"bad signature listed", jwksOf(wrongKey, wrongType), attest.ErrSignature, []string{
			`kid "key-1" from doc0: signature does not verify`,
			"cannot verify the token",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyWith(t, GCP, token, setOf(t, tc.doc), nil)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
			for _, part := range tc.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
			modulus := base64.RawURLEncoding.EncodeToString(impostor.N.Bytes())[:16]
			if strings.Contains(err.Error(), modulus) {
				t.Errorf("error %q contains key material", err)
			}
		})
	}
}

func TestSkippedKeysListBounded(t *testing.T) {
	skips := make([]keySkip, maxListedSkips+3)
	for i := range skips {
		skips[i] = keySkip{kid: "k", source: "jwks.json", reason: "kid mismatch"}
	}
	got := describeSkips(skips)
	if n := strings.Count(got, "kid mismatch"); n != maxListedSkips {
		t.Errorf("listed %d keys, want %d: %s", n, maxListedSkips, got)
	}
	if !strings.HasSuffix(got, "and 3 more") {
		t.Errorf("list %q does not end with the count of unlisted keys", got)
	}
}
