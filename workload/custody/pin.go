package custody

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/cloister-dev/cloister/internal/printable"
)

// maxPinShown bounds how much of an invalid public_key an error quotes. A
// valid one has at most 124 characters (ECDSA P-256 in PKIX).
const maxPinShown = 160

// pinFix ends the errors about an invalid public_key.
const pinFix = "copy the key's public_key from the output of cloister custody keys, or remove public_key"

// pinnedPublicKey decodes the key's public_key and checks that it is a
// public key of the key's type, in the encoding that PublicKey.Format
// names for that type. It returns nil when the key is not pinned.
func (k KeyPolicy) pinnedPublicKey() ([]byte, error) {
	if k.PublicKey == "" {
		return nil, nil
	}
	public, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("public_key %s is not standard base64 (%v): %s", printable.Quote(k.PublicKey, maxPinShown), err, pinFix)
	}
	// The decoder skips line breaks, so one key has several spellings.
	// Accepting only the canonical one keeps the manifest that the
	// parties review identical to what the workload compares.
	if base64.StdEncoding.EncodeToString(public) != k.PublicKey {
		return nil, fmt.Errorf("public_key %s is not canonical base64: remove line breaks and use padding: %s", printable.Quote(k.PublicKey, maxPinShown), pinFix)
	}
	if err := checkPublicKey(k.Type, public); err != nil {
		return nil, fmt.Errorf("public_key %s: %w: %s", printable.Quote(k.PublicKey, maxPinShown), err, pinFix)
	}
	return public, nil
}

// checkPublicKey checks that public is a public key of typ in the exact
// bytes that keyFromSecret produces for it, so that comparing the bytes
// compares the keys.
func checkPublicKey(typ KeyType, public []byte) error {
	var canonical []byte
	switch typ {
	case Ed25519, ECDSAP256:
		pub, err := x509.ParsePKIXPublicKey(public)
		if err != nil {
			return fmt.Errorf("not a PKIX (DER SubjectPublicKeyInfo) public key: %v", err)
		}
		switch pub := pub.(type) {
		case ed25519.PublicKey:
			if typ != Ed25519 {
				return fmt.Errorf("an Ed25519 public key for a key of type %s", typ)
			}
		case *ecdsa.PublicKey:
			if typ != ECDSAP256 || pub.Curve != elliptic.P256() {
				return fmt.Errorf("an ECDSA %s public key for a key of type %s", pub.Curve.Params().Name, typ)
			}
		default:
			return fmt.Errorf("a %T public key for a key of type %s", pub, typ)
		}
		canonical, err = x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return err
		}
	case Secp256k1:
		if len(public) != secp256k1.PubKeyBytesLenCompressed {
			return fmt.Errorf("%d bytes, but a secp256k1 public key is %d bytes (compressed SEC 1)", len(public), secp256k1.PubKeyBytesLenCompressed)
		}
		pub, err := secp256k1.ParsePubKey(public)
		if err != nil {
			return fmt.Errorf("not a secp256k1 public key: %v", err)
		}
		canonical = pub.SerializeCompressed()
	default:
		return typ.check()
	}
	if !bytes.Equal(canonical, public) {
		return errors.New("not in the canonical encoding of this key type")
	}
	return nil
}

// PinPublicKeys returns a copy of m in which every key's PublicKey is
// the public key of the same name in keys, which a party read from the
// verified workload (Client.PublicKeys). It fails when keys lacks a key of
// m, has another type for it, or differs from a key that m pins already.
func (m *Manifest) PinPublicKeys(keys []PublicKey) (*Manifest, error) {
	pinned := *m
	pinned.Keys = slices.Clone(m.Keys)
	for i, kp := range pinned.Keys {
		j := slices.IndexFunc(keys, func(k PublicKey) bool { return k.Name == kp.Name })
		if j < 0 {
			return nil, fmt.Errorf("the workload returned no public key for key %q of the manifest", kp.Name)
		}
		pub := keys[j]
		if pub.Type != kp.Type {
			return nil, fmt.Errorf("the workload returned a %s public key for key %q, but the manifest lists type %s", pub.Type, kp.Name, kp.Type)
		}
		encoded := base64.StdEncoding.EncodeToString(pub.PublicKey)
		if kp.PublicKey != "" && kp.PublicKey != encoded {
			return nil, fmt.Errorf("the workload returned public key %s for key %q, but the manifest pins %s", encoded, kp.Name, kp.PublicKey)
		}
		pinned.Keys[i].PublicKey = encoded
	}
	if err := pinned.Validate(); err != nil {
		return nil, fmt.Errorf("pinning the workload's public keys: %w", err)
	}
	return &pinned, nil
}
