package modelserve

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloister-dev/cloister/workload"
)

// EncryptedFormat is the value of EncryptedModel.Format.
const EncryptedFormat = "cloister-encrypted-model/v1"

// KeySize is the length of a model key (AES-256).
const KeySize = 32

// EncryptedModel is a model file at rest: the model's JSON encrypted
// with AES-256-GCM under a key that the key broker stores at KeyResource.
// The format and KeyResource are the additional data, so the file cannot
// be pointed at another key resource.
type EncryptedModel struct {
	Format      string `json:"format"`
	KeyResource string `json:"key_resource"`
	Nonce       []byte `json:"nonce"`
	Ciphertext  []byte `json:"ciphertext"`
}

// maxEncryptedModel bounds an encrypted model file: MaxParameters
// numbers of about 25 JSON bytes each, base64 encoded.
const maxEncryptedModel = MaxParameters * 25 * 4 / 3

func additionalData(keyResource string) []byte {
	return []byte(EncryptedFormat + "\x00" + keyResource)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the model key has %d bytes, want %d: store 32 random bytes at the key broker, such as the key file that cloister modelserve encrypt --key-out writes", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Encrypt validates the model JSON plain and encrypts it under key for
// the key broker resource keyResource. It returns the encrypted file and
// the plaintext's SHA-256, which the manifest names.
func Encrypt(plain, key []byte, keyResource string) ([]byte, [32]byte, error) {
	if _, err := ParseModel(plain); err != nil {
		return nil, [32]byte{}, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, [32]byte{}, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, [32]byte{}, err
	}
	enc := EncryptedModel{Format: EncryptedFormat, KeyResource: keyResource, Nonce: nonce,
		Ciphertext: aead.Seal(nil, nonce, plain, additionalData(keyResource))}
	out, err := json.Marshal(enc)
	if err != nil {
		return nil, [32]byte{}, err
	}
	return append(out, '\n'), sha256.Sum256(plain), nil
}

// ParseEncryptedModel decodes an encrypted model file without
// decrypting it.
func ParseEncryptedModel(raw []byte) (*EncryptedModel, error) {
	if len(raw) > maxEncryptedModel {
		return nil, fmt.Errorf("encrypted model file of %d bytes is larger than %d", len(raw), maxEncryptedModel)
	}
	r := bytes.NewReader(raw)
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var e EncryptedModel
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("invalid encrypted model file: %w", err)
	}
	// Encrypt ends the object with a newline and nothing else.
	if err := workload.ExpectEnd(dec, r, "file", "use the file as cloister modelserve encrypt wrote it"); err != nil {
		return nil, fmt.Errorf("invalid encrypted model file: %w", err)
	}
	if e.Format != EncryptedFormat {
		return nil, fmt.Errorf("invalid encrypted model file: format %q, want %q", e.Format, EncryptedFormat)
	}
	return &e, nil
}

// Decrypt returns the model JSON. The caller clears it after parsing.
func (e *EncryptedModel) Decrypt(key []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(e.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("invalid encrypted model file: nonce of %d bytes, want %d", len(e.Nonce), aead.NonceSize())
	}
	plain, err := aead.Open(nil, e.Nonce, e.Ciphertext, additionalData(e.KeyResource))
	if err != nil {
		return nil, errors.New("decrypting the model failed: the key broker released another key, or the file was modified")
	}
	return plain, nil
}
