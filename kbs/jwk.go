package kbs

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/cloister-dev/cloister/internal/printable"
)

// The key-management algorithms of the resource JWE.
const (
	AlgECDHESA256KW = "ECDH-ES+A256KW"
	AlgRSAOAEP256   = "RSA-OAEP-256"
	EncA256GCM      = "A256GCM"
)

// minRSABits is the smallest RSA modulus accepted as a tee-pubkey. Guests
// generate 2048-bit keys.
const minRSABits = 2048

// maxRSABits is the largest RSA modulus accepted as a tee-pubkey. It is
// the largest size that common RSA implementations, OpenSSL's among them,
// use, and it bounds the cost of the encryption a guest's key requests.
const maxRSABits = 16384

// b64 is the strict base64url without padding that guests and Trustee use
// for JWK and JWE members; a padded value is an error.
var b64 = base64.RawURLEncoding.Strict()

// curveFor returns the ECDH curve and coordinate size of a JWK crv.
func curveFor(crv string) (ecdh.Curve, int, error) {
	switch crv {
	case "P-256":
		return ecdh.P256(), 32, nil
	case "P-521":
		return ecdh.P521(), 66, nil
	}
	return nil, 0, fmt.Errorf("unsupported tee-pubkey curve %s: use P-256 or P-521", printable.Quote(crv, maxEchoedValue))
}

// ECDHPublicKey decodes an EC tee-pubkey strictly: x and y must be
// unpadded base64url of exactly the curve's coordinate size, and the point
// must be on the curve.
func (k TEEPubKey) ECDHPublicKey() (*ecdh.PublicKey, error) {
	if k.Kty != "EC" {
		return nil, fmt.Errorf("tee-pubkey kty is %s, not EC", printable.Quote(k.Kty, maxEchoedValue))
	}
	curve, size, err := curveFor(k.Crv)
	if err != nil {
		return nil, err
	}
	x, err := decodeFixed("x", k.X, size)
	if err != nil {
		return nil, err
	}
	y, err := decodeFixed("y", k.Y, size)
	if err != nil {
		return nil, err
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := curve.NewPublicKey(point)
	if err != nil {
		return nil, fmt.Errorf("tee-pubkey is not a point on %s: %w", k.Crv, err)
	}
	return pub, nil
}

func decodeFixed(name, s string, size int) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("tee-pubkey member %s is not unpadded base64url: %w", name, err)
	}
	if len(b) != size {
		return nil, fmt.Errorf("tee-pubkey member %s is %d bytes, expected %d", name, len(b), size)
	}
	return b, nil
}

// RSAPublicKey decodes an RSA tee-pubkey strictly. It requires an odd
// modulus of 2048 to 16384 bits and an exponent that crypto/rsa encrypts
// with, so that a key it accepts is one Encrypt can use.
func (k TEEPubKey) RSAPublicKey() (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("tee-pubkey kty is %s, not RSA", printable.Quote(k.Kty, maxEchoedValue))
	}
	n, err := b64.DecodeString(k.N)
	if err != nil {
		return nil, fmt.Errorf("tee-pubkey member n is not unpadded base64url: %w", err)
	}
	e, err := b64.DecodeString(k.E)
	if err != nil {
		return nil, fmt.Errorf("tee-pubkey member e is not unpadded base64url: %w", err)
	}
	if len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("tee-pubkey exponent is %d bytes, expected 1 to 4", len(e))
	}
	exp := new(big.Int).SetBytes(e).Int64()
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
	if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("tee-pubkey RSA modulus is %d bits, expected at least %d and at most %d", bits, minRSABits, maxRSABits)
	}
	if pub.N.Bit(0) == 0 {
		return nil, errors.New("tee-pubkey RSA modulus is even, so it is not an RSA modulus")
	}
	// crypto/rsa encrypts only with an exponent of at most 2^31-1.
	if exp < 3 || exp%2 == 0 || exp > math.MaxInt32 {
		return nil, fmt.Errorf("tee-pubkey RSA exponent %d is invalid; use an odd exponent from 3 to 2^31-1, such as 65537 (AQAB)", exp)
	}
	pub.E = int(exp)
	return pub, nil
}

// PublicKeyJWK returns the tee-pubkey JWK of a guest's private key, in the
// form the guest sends: EC keys with alg ECDH-ES+A256KW and fixed-length
// coordinates, RSA keys with alg RSA-OAEP-256.
func PublicKeyJWK(priv crypto.PrivateKey) (TEEPubKey, error) {
	switch p := priv.(type) {
	case *ecdh.PrivateKey:
		return ecdhJWK(p.PublicKey())
	case *ecdsa.PrivateKey:
		pub, err := p.PublicKey.ECDH()
		if err != nil {
			return TEEPubKey{}, err
		}
		return ecdhJWK(pub)
	case *rsa.PrivateKey:
		e := big.NewInt(int64(p.E)).Bytes()
		return TEEPubKey{Kty: "RSA", Alg: AlgRSAOAEP256, N: b64.EncodeToString(p.N.Bytes()), E: b64.EncodeToString(e)}, nil
	}
	return TEEPubKey{}, fmt.Errorf("unsupported TEE private key type %T: use an ECDH P-256 or P-521 key or an RSA key", priv)
}

func ecdhJWK(pub *ecdh.PublicKey) (TEEPubKey, error) {
	var crv string
	switch pub.Curve() {
	case ecdh.P256():
		crv = "P-256"
	case ecdh.P521():
		crv = "P-521"
	default:
		return TEEPubKey{}, fmt.Errorf("unsupported TEE key curve %v: use P-256 or P-521", pub.Curve())
	}
	point := pub.Bytes()
	size := (len(point) - 1) / 2
	return TEEPubKey{Kty: "EC", Crv: crv, Alg: AlgECDHESA256KW,
		X: b64.EncodeToString(point[1 : 1+size]), Y: b64.EncodeToString(point[1+size:])}, nil
}
