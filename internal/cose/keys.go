package cose

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// CallerKey is a public key that the caller supplied as a trust anchor.
type CallerKey struct {
	Key crypto.PublicKey
	// Source names where the key came from: a file, or a file and a JWK
	// key ID.
	Source string
	// KeyID is the JWK kid, empty for PEM and DER keys.
	KeyID string
	// Fingerprint is the SHA-256 of the key's DER SubjectPublicKeyInfo.
	Fingerprint [32]byte
}

// CallerKeys returns the public keys of the trust anchors and of the
// collateral: PEM or DER SubjectPublicKeyInfo items and every key of each
// JWK or JWK Set document. Private JWK members are never read. A JWK that
// does not parse is skipped, because collateral directories may contain
// other JSON documents. A caller that finds no key reports that by name.
func CallerKeys(ctx context.Context, opts attest.Options, q collateral.Query) ([]CallerKey, error) {
	set, err := opts.CollateralFor(ctx, q)
	if err != nil {
		return nil, err
	}
	var keys []CallerKey
	seen := map[[32]byte]bool{}
	add := func(k CallerKey) {
		if !seen[k.Fingerprint] {
			seen[k.Fingerprint] = true
			keys = append(keys, k)
		}
	}
	for _, s := range []*collateral.Set{opts.Anchors(q.TEE), set} {
		for _, it := range s.OfKind(collateral.KindPublicKey) {
			if k, err := newCallerKey(it.PublicKey, it.Source, ""); err == nil {
				add(k)
			}
		}
		for _, it := range s.OfKind(collateral.KindJWKS) {
			for _, k := range jwkKeys(it) {
				add(k)
			}
		}
	}
	return keys, nil
}

func jwkKeys(it *collateral.Item) []CallerKey {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(it.Raw, &set); err != nil || len(set.Keys) == 0 {
		var single jose.JSONWebKey
		if err := json.Unmarshal(it.Raw, &single); err != nil {
			return nil
		}
		set.Keys = []jose.JSONWebKey{single}
	}
	var out []CallerKey
	for _, jwk := range set.Keys {
		pub := jwk.Public()
		if !pub.Valid() {
			continue
		}
		source := it.Source
		if jwk.KeyID != "" {
			source += " (kid " + jwk.KeyID + ")"
		}
		if k, err := newCallerKey(pub.Key, source, jwk.KeyID); err == nil {
			out = append(out, k)
		}
	}
	return out
}

func newCallerKey(key crypto.PublicKey, source, kid string) (CallerKey, error) {
	switch key.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
	default:
		return CallerKey{}, fmt.Errorf("unsupported key type %T", key)
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return CallerKey{}, err
	}
	return CallerKey{Key: key, Source: source, KeyID: kid, Fingerprint: sha256.Sum256(der)}, nil
}

// Anchor describes k as a caller-key trust anchor. testKeys maps the
// SHA-256 fingerprints of keys published for testing, in hexadecimal, to
// their names.
func (k CallerKey) Anchor(testKeys map[string]string) attest.TrustAnchorRef {
	fp := hex.EncodeToString(k.Fingerprint[:])
	ref := attest.TrustAnchorRef{Kind: attest.AnchorCallerKey, Name: k.Source, SHA256: k.Fingerprint[:]}
	if name, ok := testKeys[fp]; ok {
		ref.TestKey = true
		ref.Name = k.Source + ": " + name
	}
	return ref
}

// VerifyWithKeys verifies s under each key in turn and returns the first
// key that verifies. The returned error, when none does, names how many
// keys were tried and the last failure.
func (s *Sign1) VerifyWithKeys(keys []CallerKey) (CallerKey, error) {
	var last error
	for _, k := range keys {
		err := s.Verify(k.Key)
		if err == nil {
			return k, nil
		}
		last = err
	}
	if len(keys) == 0 {
		return CallerKey{}, fmt.Errorf("no public key was supplied")
	}
	return CallerKey{}, fmt.Errorf("%s signature does not verify under any of the %d supplied keys: %w", s.Algorithm, len(keys), last)
}
