package custody

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloister-dev/cloister/workload"
)

// SealingKeySize is the length of the AES-256 sealing key.
const SealingKeySize = 32

// sealedVersion is the version of the sealed key file format.
const sealedVersion = 1

// sealDomain starts the additional data of every sealed key, so that a
// ciphertext sealed for another purpose under the same key does not
// open as a signing key.
const sealDomain = "cloister-custody-sealed-key/v1"

// maxSealedFile bounds a sealed key file; a real one is about 300 bytes.
const maxSealedFile = 64 << 10

// SealedKey is the on-disk form of a signing key: JSON with the private
// key encrypted by AES-256-GCM.
type SealedKey struct {
	Version int     `json:"version"`
	Name    string  `json:"name"`
	Type    KeyType `json:"type"`
	// PublicKey is in the encoding PublicKey.Format names.
	PublicKey  []byte `json:"public_key"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

func newSealer(sealingKey []byte) (cipher.AEAD, error) {
	if len(sealingKey) != SealingKeySize {
		return nil, fmt.Errorf("the sealing key has %d bytes, want %d: store 32 random bytes at the key broker, such as from head -c 32 /dev/urandom", len(sealingKey), SealingKeySize)
	}
	block, err := aes.NewCipher(sealingKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// additionalData binds the ciphertext to the key's name, type and public
// key. Each field is length-prefixed by its JSON string form, so no two
// triples produce the same bytes.
func additionalData(name string, typ KeyType, public []byte) []byte {
	fields, _ := json.Marshal([]any{sealDomain, name, string(typ), public})
	return fields
}

// seal encrypts secret, the 32-byte private encoding of key.
func seal(aead cipher.AEAD, name string, key *signingKey, secret []byte) (*SealedKey, error) {
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ct := aead.Seal(nil, nonce, secret, additionalData(name, key.typ, key.public))
	return &SealedKey{Version: sealedVersion, Name: name, Type: key.typ, PublicKey: key.public, Nonce: nonce, Ciphertext: ct}, nil
}

// ParseSealedKey decodes a sealed key file without decrypting it.
func ParseSealedKey(raw []byte) (*SealedKey, error) {
	if len(raw) > maxSealedFile {
		return nil, fmt.Errorf("sealed key file of %d bytes is larger than %d", len(raw), maxSealedFile)
	}
	r := bytes.NewReader(raw)
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var s SealedKey
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("invalid sealed key file: %w", err)
	}
	// writeSealed ends the object with a newline and nothing else.
	if err := workload.ExpectEnd(dec, r, "file", "use the file as the custody service wrote it"); err != nil {
		return nil, fmt.Errorf("invalid sealed key file: %w", err)
	}
	if s.Version != sealedVersion {
		return nil, fmt.Errorf("sealed key file version %d is not supported: this build reads version %d", s.Version, sealedVersion)
	}
	if err := s.Type.check(); err != nil {
		return nil, fmt.Errorf("invalid sealed key file: %w", err)
	}
	return &s, nil
}

// errDecryption is the error of unseal when the AEAD rejects the file.
var errDecryption = errors.New("decryption failed: the file was sealed under another sealing key, or it was modified")

// unseal decrypts s, which must be the sealed form of the key name of
// type typ, and checks that the private key matches the stored public
// key.
func unseal(aead cipher.AEAD, s *SealedKey, name string, typ KeyType) (*signingKey, error) {
	if s.Name != name || s.Type != typ {
		return nil, fmt.Errorf("the file contains key %q of type %s, but the manifest expects %q of type %s", s.Name, s.Type, name, typ)
	}
	if len(s.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("nonce of %d bytes, want %d", len(s.Nonce), aead.NonceSize())
	}
	secret, err := aead.Open(nil, s.Nonce, s.Ciphertext, additionalData(s.Name, s.Type, s.PublicKey))
	if err != nil {
		return nil, errDecryption
	}
	defer clear(secret)
	key, err := keyFromSecret(typ, secret)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(key.public, s.PublicKey) {
		return nil, errors.New("the unsealed private key does not match the file's public key")
	}
	return key, nil
}
