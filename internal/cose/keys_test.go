package cose

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

func TestCallerKeys(t *testing.T) {
	pemKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwkKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	der, _ := x509.MarshalPKIXPublicKey(&pemKey.PublicKey)
	// A JWK with its private member: only the public part may be used.
	private, _ := json.Marshal(jose.JSONWebKey{Key: jwkKey, KeyID: "k1", Algorithm: "ES384"})
	anchorDER, _ := x509.MarshalPKIXPublicKey(&anchorKey.PublicKey)

	set := &collateral.Set{}
	set.AddBytes("iak.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	set.AddBytes("cpak.jwk.json", private)
	set.AddBytes("duplicate.der", der)
	set.AddBytes("other.json", []byte(`{"policy": {}}`))
	anchors := &collateral.Set{}
	anchors.AddBytes("anchor.der", anchorDER)

	keys, err := CallerKeys(context.Background(), attest.Options{Collateral: set, TrustAnchors: anchors}, collateral.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("%d keys, want 3 (anchor, PEM, JWK; the duplicate DER dropped)", len(keys))
	}
	if keys[0].Source != "anchor.der" {
		t.Errorf("first key from %s, want the trust anchor", keys[0].Source)
	}
	jwk := keys[2]
	if jwk.KeyID != "k1" {
		t.Errorf("kid %q, want k1", jwk.KeyID)
	}
	if _, isPublic := jwk.Key.(*ecdsa.PublicKey); !isPublic {
		t.Errorf("JWK key is %T, want a public key", jwk.Key)
	}

	testKeys := map[string]string{hex.EncodeToString(keys[1].Fingerprint[:]): "published test key"}
	if ref := keys[1].Anchor(testKeys); !ref.TestKey || ref.Kind != attest.AnchorCallerKey {
		t.Errorf("anchor %+v, want a caller key marked as a test key", ref)
	}
	if ref := keys[0].Anchor(testKeys); ref.TestKey {
		t.Errorf("anchor %+v marked as a test key", ref)
	}
}
