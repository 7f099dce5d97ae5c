package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// Envelope encryption: each secret version gets a fresh random 256-bit data
// key. The value is sealed under the data key with AES-256-GCM, and the
// data key is sealed under the master key with AES-256-GCM. Only the sealed
// forms, the master key ID and the seal format reach the database.
//
// The seal format, stored in the seal_format column, selects the additional
// data of both seals:
//
//   - sealFormatVersioned (2), written by PutSecret: the value's additional
//     data names the format, the version and the path, and the data key's
//     names the format, the version, the master key ID and the path. A
//     ciphertext or wrapped key copied to another path or to another
//     version of the same path does not open.
//   - sealFormatLegacy (1), written before the version was bound: the
//     additional data names only the path, and the master key ID for the
//     data key. Such a value of an older version opens as any newer version
//     of its path, so GetSecret and OpenSecret reject it, and the store
//     opens it only to convert it (see convertLegacySecrets).
//
// Because the format number is part of the additional data, changing the
// seal_format column of a row makes the row fail to open rather than open
// under the other format's rule.
//
// NOTE: the seals cannot show that rows are missing. When the newest
// versions of a secret are deleted, GetSecret releases the newest version
// left, and a secrets table replaced by a copy from before the conversion
// opens as well. VerifyAudit (cloister audit verify) finds the deletion
// while the audit log still contains the deleted version's put record (see
// checkSecretVersions). When that record was removed too, only a chain
// head kept outside the database shows the change.
//
// Both seals use random 96-bit nonces (cipher.NewGCMWithRandomNonce), whose
// documentation limits one key to 2^32 messages. A master key wraps one
// data key per secret version, so it reaches that limit only after more
// than four billion secret versions.

const (
	dataKeySize = 32

	// sealFormatLegacy is the format of values sealed before the version
	// was bound, which migration 0008 assigns to every existing row.
	sealFormatLegacy = 1
	// sealFormatVersioned binds each seal to the secret's version.
	sealFormatVersioned = 2

	valueADLabel = "cloister secret value\x00"
	keyADLabel   = "cloister secret data key\x00"

	versionedValueADLabel = "cloister secret value v2\x00"
	versionedKeyADLabel   = "cloister secret data key v2\x00"
)

// sealSecret encrypts value as version of the secret at path, in the
// versioned format, under a new data key wrapped by mk.
func sealSecret(mk *MasterKey, path string, version int64, value []byte) (ciphertext, wrappedKey []byte, err error) {
	dataKey := make([]byte, dataKeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, nil, fmt.Errorf("generate data key: %w", err)
	}
	defer clear(dataKey)
	ciphertext, err = gcmSeal(dataKey, value, valueAD(sealFormatVersioned, path, version))
	if err != nil {
		return nil, nil, err
	}
	wrappedKey, err = gcmSeal(mk.key, dataKey, keyAD(sealFormatVersioned, mk.id, path, version))
	if err != nil {
		return nil, nil, err
	}
	return ciphertext, wrappedKey, nil
}

// openSecret unwraps the data key with mk and decrypts the value stored as
// version of the secret at path in the given seal format. Any mismatch
// (wrong master key, a ciphertext from another path or version, a modified
// byte or seal format) fails with ErrDecrypt. Callers decide whether the
// legacy format is acceptable, and openSecret opens both.
func openSecret(mk *MasterKey, format int, path string, version int64, ciphertext, wrappedKey []byte) ([]byte, error) {
	if format != sealFormatLegacy && format != sealFormatVersioned {
		return nil, fmt.Errorf("%w: secret %s version %d has seal format %d, which this release does not support (expected %d); "+
			"run the Cloister release that wrote it, or store the secret again with cloister secret put",
			ErrDecrypt, path, version, format, sealFormatVersioned)
	}
	dataKey, err := gcmOpen(mk.key, wrappedKey, keyAD(format, mk.id, path, version))
	if err != nil {
		return nil, fmt.Errorf("%w: unwrap data key of secret %s version %d with %s: %v; %s",
			ErrDecrypt, path, version, mk, err, sealMismatchFix)
	}
	defer clear(dataKey)
	value, err := gcmOpen(dataKey, ciphertext, valueAD(format, path, version))
	if err != nil {
		return nil, fmt.Errorf("%w: decrypt value of secret %s version %d: %v; %s",
			ErrDecrypt, path, version, err, sealMismatchFix)
	}
	return value, nil
}

// sealMismatchFix ends the error of a seal that does not open.
const sealMismatchFix = "the row does not contain the value stored as this version of this path " +
	"(it was changed, or copied from another version or path), so store the secret again with cloister secret put"

// valueAD returns the additional data of a value sealed in format.
func valueAD(format int, path string, version int64) []byte {
	if format == sealFormatLegacy {
		return []byte(valueADLabel + path)
	}
	ad := []byte(versionedValueADLabel)
	ad = binary.BigEndian.AppendUint64(ad, uint64(version))
	return append(ad, path...)
}

// keyAD returns the additional data of a data key wrapped in format. The
// master key ID never contains a NUL byte, so the separator keeps the ID
// and the path apart.
func keyAD(format int, masterKeyID, path string, version int64) []byte {
	if format == sealFormatLegacy {
		return []byte(keyADLabel + masterKeyID + "\x00" + path)
	}
	ad := []byte(versionedKeyADLabel)
	ad = binary.BigEndian.AppendUint64(ad, uint64(version))
	return append(ad, masterKeyID+"\x00"+path...)
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
