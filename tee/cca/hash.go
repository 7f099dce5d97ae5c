package cca

import (
	"crypto"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash
	_ "crypto/sha512" // registers SHA-384 and SHA-512 for crypto.Hash
	"fmt"
)

// hashAlgorithms maps the hash algorithm identifiers of CCA tokens (names
// from the IANA Named Information Hash Algorithm Registry) to hashes.
var hashAlgorithms = map[string]crypto.Hash{
	"sha-256": crypto.SHA256,
	"sha-384": crypto.SHA384,
	"sha-512": crypto.SHA512,
}

func parseHashAlgorithm(name string) (crypto.Hash, error) {
	h, ok := hashAlgorithms[name]
	if !ok {
		return 0, fmt.Errorf("hash algorithm %q is not sha-256, sha-384 or sha-512", name)
	}
	return h, nil
}

func digest(h crypto.Hash, data []byte) []byte {
	w := h.New()
	w.Write(data)
	return w.Sum(nil)
}
