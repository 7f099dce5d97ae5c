package custody

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// KeyType names a signature algorithm.
type KeyType string

// The key types the workload generates.
const (
	Ed25519   KeyType = "ed25519"
	ECDSAP256 KeyType = "ecdsa-p256"
	Secp256k1 KeyType = "secp256k1"
)

// Public key encodings of PublicKey.Format.
const (
	FormatPKIX           = "pkix"
	FormatSEC1Compressed = "sec1-compressed"
)

// privateKeySize is the length of every sealed private key: an Ed25519
// seed or a big-endian ECDSA scalar.
const privateKeySize = 32

func (t KeyType) check() error {
	switch t {
	case Ed25519, ECDSAP256, Secp256k1:
		return nil
	}
	return fmt.Errorf("unknown key type %q: use %s, %s or %s", t, Ed25519, ECDSAP256, Secp256k1)
}

// signingKey is a private key in memory.
type signingKey struct {
	typ    KeyType
	ed     ed25519.PrivateKey
	p256   *ecdsa.PrivateKey
	k1     *secp256k1.PrivateKey
	public []byte
	format string
}

// generateKey creates a private key of typ with crypto/rand and returns
// it with its 32-byte private encoding, which the caller must clear.
func generateKey(typ KeyType) (*signingKey, []byte, error) {
	secret := make([]byte, privateKeySize)
	switch typ {
	case Ed25519:
		if _, err := rand.Read(secret); err != nil {
			return nil, nil, err
		}
	case ECDSAP256:
		k, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		copy(secret, k.Bytes())
	case Secp256k1:
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return nil, nil, err
		}
		k.Key.PutBytes((*[32]byte)(secret))
		k.Zero()
	default:
		return nil, nil, typ.check()
	}
	key, err := keyFromSecret(typ, secret)
	if err != nil {
		clear(secret)
		return nil, nil, err
	}
	return key, secret, nil
}

// keyFromSecret rebuilds a private key from its 32-byte encoding.
func keyFromSecret(typ KeyType, secret []byte) (*signingKey, error) {
	if len(secret) != privateKeySize {
		return nil, fmt.Errorf("private key of %d bytes, want %d", len(secret), privateKeySize)
	}
	k := &signingKey{typ: typ, format: FormatPKIX}
	var err error
	switch typ {
	case Ed25519:
		k.ed = ed25519.NewKeyFromSeed(secret)
		k.public, err = x509.MarshalPKIXPublicKey(k.ed.Public())
	case ECDSAP256:
		k.p256, err = ecdsa.ParseRawPrivateKey(elliptic.P256(), secret)
		if err == nil {
			k.public, err = x509.MarshalPKIXPublicKey(&k.p256.PublicKey)
		}
	case Secp256k1:
		var scalar secp256k1.ModNScalar
		if overflow := scalar.SetByteSlice(secret); overflow || scalar.IsZero() {
			return nil, errors.New("secp256k1 private key is zero or not below the group order")
		}
		k.k1 = secp256k1.NewPrivateKey(&scalar)
		k.public = k.k1.PubKey().SerializeCompressed()
		k.format = FormatSEC1Compressed
	default:
		return nil, typ.check()
	}
	if err != nil {
		return nil, fmt.Errorf("%s private key: %w", typ, err)
	}
	return k, nil
}

// sign signs message: Ed25519 over the message, ECDSA over its SHA-256.
func (k *signingKey) sign(message []byte) ([]byte, error) {
	switch k.typ {
	case Ed25519:
		return ed25519.Sign(k.ed, message), nil
	case ECDSAP256:
		digest := sha256.Sum256(message)
		return ecdsa.SignASN1(rand.Reader, k.p256, digest[:])
	case Secp256k1:
		digest := sha256.Sum256(message)
		return secpecdsa.Sign(k.k1, digest[:]).Serialize(), nil
	}
	return nil, k.typ.check()
}

// VerifySignature checks signature over message with a public key as
// PublicKey returns it, by the rules of typ. It is for parties that
// verify what the workload signed, so it accepts only what the workload
// produces: the public key encoding and curve of typ (see checkPublicKey)
// and, for secp256k1, a DER signature with a low S value.
func VerifySignature(typ KeyType, public, message, signature []byte) error {
	if err := checkPublicKey(typ, public); err != nil {
		return fmt.Errorf("invalid %s public key: %w", typ, err)
	}
	digest := sha256.Sum256(message)
	switch typ {
	case Ed25519, ECDSAP256:
		pub, err := x509.ParsePKIXPublicKey(public)
		if err != nil {
			return fmt.Errorf("invalid %s public key: %w", typ, err)
		}
		switch pub := pub.(type) {
		case ed25519.PublicKey:
			if ed25519.Verify(pub, message, signature) {
				return nil
			}
		case *ecdsa.PublicKey:
			if ecdsa.VerifyASN1(pub, digest[:], signature) {
				return nil
			}
		}
	case Secp256k1:
		pub, err := secp256k1.ParsePubKey(public)
		if err != nil {
			return fmt.Errorf("invalid secp256k1 public key: %w", err)
		}
		sig, err := secpecdsa.ParseDERSignature(signature)
		if err != nil {
			return fmt.Errorf("invalid secp256k1 signature: %w", err)
		}
		// Negating S gives a second valid signature of the same message,
		// so only one of the two is accepted.
		if s := sig.S(); s.IsOverHalfOrder() {
			return errors.New("invalid secp256k1 signature: its S value is not low S (at most half the group order), and the workload signs only with low S")
		}
		if sig.Verify(digest[:], pub) {
			return nil
		}
	default:
		return typ.check()
	}
	return fmt.Errorf("%s signature does not verify with this public key", typ)
}
