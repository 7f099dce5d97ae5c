package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// Envelope encryption: each secret version gets a fresh random 256-bit data
// key. The value is sealed under the data key with AES-256-GCM and the
// secret path as additional data, so a ciphertext moved to another path
// does not open. The data key is sealed under the master key with
// AES-256-GCM, with the master key ID and the path as additional data.
// Only the sealed forms and the master key ID reach the database.
//
// NOTE: neither additional data names the version, so the ciphertext and
// wrapped key of an older version, copied into the row of a newer version
// of the same path, open as that version. Deleting the newer rows rolls a
// secret back as well, so only a database that only the service can write
// prevents a rollback.
//
// Both seals use random 96-bit nonces (cipher.NewGCMWithRandomNonce), whose
// documentation limits one key to 2^32 messages. A master key wraps one
// data key per secret version, so it reaches that limit only after more
// than four billion secret versions.

const (
	dataKeySize  = 32
	valueADLabel = "cloister secret value\x00"
	keyADLabel   = "cloister secret data key\x00"
)

// sealSecret encrypts value for path under a new data key wrapped by mk.
func sealSecret(mk *MasterKey, path string, value []byte) (ciphertext, wrappedKey []byte, err error) {
	dataKey := make([]byte, dataKeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, nil, fmt.Errorf("generate data key: %w", err)
	}
	ciphertext, err = gcmSeal(dataKey, value, []byte(valueADLabel+path))
	if err != nil {
		return nil, nil, err
	}
	wrappedKey, err = gcmSeal(mk.key, dataKey, keyAD(mk.id, path))
	if err != nil {
		return nil, nil, err
	}
	clear(dataKey)
	return ciphertext, wrappedKey, nil
}

// openSecret unwraps the data key with mk and decrypts the value. Any
// mismatch (wrong master key, a ciphertext from another path, a modified
// byte) fails with ErrDecrypt.
func openSecret(mk *MasterKey, path string, ciphertext, wrappedKey []byte) ([]byte, error) {
	dataKey, err := gcmOpen(mk.key, wrappedKey, keyAD(mk.id, path))
	if err != nil {
		return nil, fmt.Errorf("%w: unwrap data key of %s with %s: %v", ErrDecrypt, path, mk, err)
	}
	defer clear(dataKey)
	value, err := gcmOpen(dataKey, ciphertext, []byte(valueADLabel+path))
	if err != nil {
		return nil, fmt.Errorf("%w: decrypt value of %s: %v", ErrDecrypt, path, err)
	}
	return value, nil
}

func keyAD(masterKeyID, path string) []byte {
	return []byte(keyADLabel + masterKeyID + "\x00" + path)
}

// gcmSeal returns nonce || AES-256-GCM(key, plaintext, ad) with a random
// 96-bit nonce.
func gcmSeal(key, plaintext, ad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nil, plaintext, ad), nil
}

// gcmOpen reverses gcmSeal.
func gcmOpen(key, sealed, ad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.Overhead() {
		return nil, fmt.Errorf("sealed data is %d bytes, shorter than nonce and tag (%d bytes)", len(sealed), aead.Overhead())
	}
	return aead.Open(nil, nil, sealed, ad)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}
