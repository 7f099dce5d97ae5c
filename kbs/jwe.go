package kbs

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
)

// jweHeader is the protected header. Its fields are in the order guests
// re-serialize them (alg, enc, then the rest sorted), and encoding/json
// writes it compact, so the AAD a guest rebuilds equals the one used here.
type jweHeader struct {
	Alg string  `json:"alg"`
	Enc string  `json:"enc"`
	EPK *jweEPK `json:"epk,omitempty"`
}

// jweEPK is the ephemeral public key, members in sorted order.
type jweEPK struct {
	Crv string `json:"crv"`
	Kty string `json:"kty"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// jweInputs are the random values of one encryption, fixed in tests.
type jweInputs struct {
	ephemeral *ecdh.PrivateKey
	cek       []byte
	iv        []byte
	rand      io.Reader
}

// Encrypt encrypts plaintext to the tee-pubkey as the flattened JWE a guest
// decrypts: A256GCM content encryption with a random 32-byte key and
// 12-byte IV, the key wrapped with ECDH-ES+A256KW for EC keys (P-256,
// P-521) or RSA-OAEP-256 for RSA keys. Any other key or alg is an error;
// RSA1_5, which Trustee still accepts, is rejected because PKCS #1 v1.5
// decryption on the guest is open to padding-oracle attacks.
func Encrypt(key TEEPubKey, plaintext []byte) (*Response, error) {
	in := jweInputs{cek: make([]byte, 32), iv: make([]byte, 12), rand: rand.Reader}
	if _, err := rand.Read(in.cek); err != nil {
		return nil, err
	}
	if _, err := rand.Read(in.iv); err != nil {
		return nil, err
	}
	if key.Kty == "EC" {
		curve, _, err := curveFor(key.Crv)
		if err != nil {
			return nil, err
		}
		if in.ephemeral, err = curve.GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
	}
	return encrypt(key, plaintext, in)
}

func encrypt(key TEEPubKey, plaintext []byte, in jweInputs) (*Response, error) {
	var hdr jweHeader
	var encryptedKey []byte
	switch {
	case key.Kty == "EC" && key.Alg == AlgECDHESA256KW:
		pub, err := key.ECDHPublicKey()
		if err != nil {
			return nil, err
		}
		if in.ephemeral == nil || in.ephemeral.Curve() != pub.Curve() {
			return nil, errors.New("ephemeral key is not on the tee-pubkey's curve")
		}
		z, err := in.ephemeral.ECDH(pub)
		if err != nil {
			return nil, fmt.Errorf("ECDH with the tee-pubkey failed: %w", err)
		}
		if encryptedKey, err = aesKeyWrap(concatKDF(z, AlgECDHESA256KW), in.cek); err != nil {
			return nil, err
		}
		epk, err := ecdhJWK(in.ephemeral.PublicKey())
		if err != nil {
			return nil, err
		}
		hdr = jweHeader{Alg: AlgECDHESA256KW, Enc: EncA256GCM, EPK: &jweEPK{Crv: epk.Crv, Kty: "EC", X: epk.X, Y: epk.Y}}
	case key.Kty == "RSA" && key.Alg == AlgRSAOAEP256:
		pub, err := key.RSAPublicKey()
		if err != nil {
			return nil, err
		}
		if encryptedKey, err = rsa.EncryptOAEP(sha256.New(), in.rand, pub, in.cek, nil); err != nil {
			return nil, fmt.Errorf("RSA-OAEP-256 encryption to the tee-pubkey failed: %w", err)
		}
		hdr = jweHeader{Alg: AlgRSAOAEP256, Enc: EncA256GCM}
	default:
		return nil, fmt.Errorf("unsupported tee-pubkey: kty %q with alg %q; use EC with %s or RSA with %s",
			key.Kty, key.Alg, AlgECDHESA256KW, AlgRSAOAEP256)
	}

	hdrJSON, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	protected := b64.EncodeToString(hdrJSON)
	ciphertext, tag, err := sealA256GCM(in.cek, in.iv, plaintext, []byte(protected))
	if err != nil {
		return nil, err
	}
	return &Response{
		Protected:    protected,
		EncryptedKey: b64.EncodeToString(encryptedKey),
		IV:           b64.EncodeToString(in.iv),
		Ciphertext:   b64.EncodeToString(ciphertext),
		Tag:          b64.EncodeToString(tag),
	}, nil
}

func sealA256GCM(cek, iv, plaintext, aad []byte) (ciphertext, tag []byte, err error) {
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	sealed := gcm.Seal(nil, iv, plaintext, aad)
	n := len(sealed) - gcm.Overhead()
	return sealed[:n], sealed[n:], nil
}

// Decrypt decrypts a resource JWE with the guest's private key
// (*ecdh.PrivateKey, *ecdsa.PrivateKey or *rsa.PrivateKey), the way the
// guest does it: it rebuilds the AAD from the decoded protected header
// (alg, enc, then the other members sorted, compact), requires A256GCM with
// a 12-byte IV and a 16-byte tag, and ignores an aad member.
func Decrypt(priv crypto.PrivateKey, r *Response) ([]byte, error) {
	hdrJSON, err := b64.DecodeString(r.Protected)
	if err != nil {
		return nil, fmt.Errorf("JWE protected header is not unpadded base64url: %w", err)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		return nil, fmt.Errorf("JWE protected header is not a JSON object: %w", err)
	}
	aad, err := guestAAD(hdr)
	if err != nil {
		return nil, err
	}
	var alg, enc string
	if err := json.Unmarshal(hdr["alg"], &alg); err != nil {
		return nil, fmt.Errorf("JWE protected header: alg is not a string")
	}
	// Guests assume A256GCM without reading enc. This client reads it, so
	// that a header naming another content encryption is not decrypted as
	// if it named A256GCM.
	if err := json.Unmarshal(hdr["enc"], &enc); err != nil || enc != EncA256GCM {
		return nil, fmt.Errorf("JWE protected header: enc %s is not %q, the only content encryption of the KBS protocol", hdr["enc"], EncA256GCM)
	}

	encryptedKey, err := b64.DecodeString(r.EncryptedKey)
	if err != nil {
		return nil, fmt.Errorf("JWE encrypted_key is not unpadded base64url: %w", err)
	}
	cek, err := unwrapCEK(priv, alg, hdr["epk"], encryptedKey)
	if err != nil {
		return nil, err
	}

	iv, err := b64.DecodeString(r.IV)
	if err != nil {
		return nil, fmt.Errorf("JWE iv is not unpadded base64url: %w", err)
	}
	if len(iv) != 12 {
		return nil, fmt.Errorf("JWE iv is %d bytes, want 12", len(iv))
	}
	tag, err := b64.DecodeString(r.Tag)
	if err != nil {
		return nil, fmt.Errorf("JWE tag is not unpadded base64url: %w", err)
	}
	if len(tag) != 16 {
		return nil, fmt.Errorf("JWE tag is %d bytes, want 16", len(tag))
	}
	ciphertext, err := b64.DecodeString(r.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("JWE ciphertext is not unpadded base64url: %w", err)
	}
	// aes.NewCipher also takes 16- and 24-byte keys, which A256GCM does
	// not allow.
	if len(cek) != 32 {
		return nil, fmt.Errorf("JWE content key is %d bytes, expected 32 for %s", len(cek), EncA256GCM)
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, fmt.Errorf("JWE content key: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plaintext, err := gcm.Open(nil, iv, append(ciphertext, tag...), aad)
	if err != nil {
		return nil, fmt.Errorf("JWE content decryption failed (tag mismatch): %w", err)
	}
	return plaintext, nil
}

// guestAAD re-serializes the protected header as the guest does before
// using it as AAD: alg first, enc second, then the other members in sorted
// order, each value in canonical JSON, base64url-encoded.
func guestAAD(hdr map[string]json.RawMessage) ([]byte, error) {
	if hdr["alg"] == nil || hdr["enc"] == nil {
		return nil, errors.New("JWE protected header lacks alg or enc")
	}
	var rest []string
	for k := range hdr {
		if k != "alg" && k != "enc" {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range append([]string{"alg", "enc"}, rest...) {
		if i > 0 {
			b.WriteByte(',')
		}
		writeCanonicalString(&b, k)
		b.WriteByte(':')
		v, err := Canonicalize(hdr[k])
		if err != nil {
			return nil, fmt.Errorf("JWE protected header member %s: %w", k, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b64.EncodeToString(b.Bytes())), nil
}

func unwrapCEK(priv crypto.PrivateKey, alg string, epkJSON json.RawMessage, encryptedKey []byte) ([]byte, error) {
	switch alg {
	case AlgECDHESA256KW:
		var own *ecdh.PrivateKey
		switch p := priv.(type) {
		case *ecdh.PrivateKey:
			own = p
		case *ecdsa.PrivateKey:
			var err error
			if own, err = p.ECDH(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("JWE alg %s needs an EC private key, not %T", alg, priv)
		}
		var e jweEPK
		if err := json.Unmarshal(epkJSON, &e); err != nil || e.Kty != "EC" {
			return nil, fmt.Errorf("JWE protected header epk is missing or not an EC key")
		}
		epk := TEEPubKey{Kty: e.Kty, Crv: e.Crv, Alg: AlgECDHESA256KW, X: e.X, Y: e.Y}
		ownJWK, err := ecdhJWK(own.PublicKey())
		if err != nil {
			return nil, err
		}
		if epk.Crv != ownJWK.Crv {
			return nil, fmt.Errorf("JWE epk curve %s differs from the TEE key's curve %s", epk.Crv, ownJWK.Crv)
		}
		pub, err := epk.ECDHPublicKey()
		if err != nil {
			return nil, fmt.Errorf("JWE epk: %w", err)
		}
		z, err := own.ECDH(pub)
		if err != nil {
			return nil, fmt.Errorf("ECDH with the JWE epk failed: %w", err)
		}
		return aesKeyUnwrap(concatKDF(z, AlgECDHESA256KW), encryptedKey)
	case AlgRSAOAEP256:
		p, ok := priv.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("JWE alg %s needs an RSA private key, not %T", alg, priv)
		}
		cek, err := rsa.DecryptOAEP(sha256.New(), nil, p, encryptedKey, nil)
		if err != nil {
			return nil, fmt.Errorf("RSA-OAEP-256 decryption of encrypted_key failed: %w", err)
		}
		return cek, nil
	}
	return nil, fmt.Errorf("unsupported JWE alg %q: expected %s or %s", alg, AlgECDHESA256KW, AlgRSAOAEP256)
}
