package kbs

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"hash"
	"strings"

	"github.com/cloister-dev/cloister/internal/printable"
)

// HashAlgorithm is a runtime-data hash the protocol names.
type HashAlgorithm string

// The hashes a server may select in a Challenge. Guests also offer sm3,
// which this server never selects.
const (
	SHA256 HashAlgorithm = "sha256"
	SHA384 HashAlgorithm = "sha384"
	SHA512 HashAlgorithm = "sha512"
)

// DefaultHash is the hash used when the Challenge selects none.
const DefaultHash = SHA384

// New returns a new hash.Hash of the algorithm.
func (h HashAlgorithm) New() (hash.Hash, error) {
	switch h {
	case SHA256:
		return sha256.New(), nil
	case SHA384:
		return sha512.New384(), nil
	case SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported runtime-data hash %s: use sha256, sha384 or sha512", printable.Quote(string(h), maxEchoedValue))
}

// Sum hashes data with the algorithm.
func (h HashAlgorithm) Sum(data []byte) ([]byte, error) {
	hh, err := h.New()
	if err != nil {
		return nil, err
	}
	hh.Write(data)
	return hh.Sum(nil), nil
}

// SelectedHash returns the hash a guest derives from a Challenge's
// extra-params: the selected-hash-algorithm member of an object, compared
// without case, or DefaultHash when the member or the object is absent. A
// member that is not a string or names no supported hash is an error, as
// the guest raises one.
func SelectedHash(extraParams json.RawMessage) (HashAlgorithm, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(extraParams, &obj); err != nil || obj == nil {
		return DefaultHash, nil
	}
	raw, ok := obj["selected-hash-algorithm"]
	if !ok {
		return DefaultHash, nil
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", fmt.Errorf("invalid selected-hash-algorithm %s: expected a string", raw)
	}
	h := HashAlgorithm(strings.ToLower(name))
	if _, err := h.New(); err != nil {
		return "", fmt.Errorf("invalid selected-hash-algorithm %s: use sha256, sha384 or sha512", printable.Quote(name, maxEchoedValue))
	}
	return h, nil
}

// PrimaryRuntimeData returns the canonical JSON of {additional-evidence,
// nonce, tee-pubkey}, which the primary evidence binds through its hash.
// additionalEvidence is the exact tee-evidence.additional_evidence string.
func PrimaryRuntimeData(nonce string, key TEEPubKey, additionalEvidence string) []byte {
	return appendRuntimeData(nil, nonce, key, &additionalEvidence)
}

// DeviceRuntimeData returns the canonical JSON of {nonce, tee-pubkey},
// which each additional device's evidence binds through its hash.
func DeviceRuntimeData(nonce string, key TEEPubKey) []byte {
	return appendRuntimeData(nil, nonce, key, nil)
}

// PrimaryDigest hashes the canonical primary runtime data with h. The
// digest is the report data the primary evidence must carry (zero-padded to
// 64 bytes for SEV-SNP, TDX and SGX).
func PrimaryDigest(h HashAlgorithm, nonce string, key TEEPubKey, additionalEvidence string) ([]byte, error) {
	return h.Sum(appendRuntimeData(make([]byte, 0, runtimeDataCapacity), nonce, key, &additionalEvidence))
}

// DeviceDigest hashes the canonical device runtime data with h.
func DeviceDigest(h HashAlgorithm, nonce string, key TEEPubKey) ([]byte, error) {
	return h.Sum(appendRuntimeData(make([]byte, 0, runtimeDataCapacity), nonce, key, nil))
}

// runtimeDataCapacity is the capacity first given to the runtime data. It
// fits the primary runtime data of an RSA-2048 key (489 bytes) or a P-521
// key (334 bytes) with a 32-byte nonce and empty additional evidence, so
// that one allocation suffices.
const runtimeDataCapacity = 512

// appendRuntimeData appends the canonical JSON (RFC 8785) of the runtime
// data to b: {additional-evidence, nonce, tee-pubkey} when
// additionalEvidence is not nil, {nonce, tee-pubkey} when it is. The
// output is byte for byte what Canonicalize makes of the json.Marshal
// encoding of the same object, with the key's empty members left out as
// omitempty leaves them out. The member names are ASCII, so they are
// written here in UTF-16 order, and only the string values need encoding.
func appendRuntimeData(b []byte, nonce string, key TEEPubKey, additionalEvidence *string) []byte {
	b = append(b, '{')
	if additionalEvidence != nil {
		b = append(b, `"additional-evidence":`...)
		b = appendCanonicalString(b, *additionalEvidence)
		b = append(b, ',')
	}
	b = append(b, `"nonce":`...)
	b = appendCanonicalString(b, nonce)
	b = append(b, `,"tee-pubkey":`...)
	b = appendCanonicalKey(b, key)
	return append(b, '}')
}

// appendCanonicalKey appends the canonical JSON of key: its members in
// name order (alg, crv, e, kty, n, x, y), kty and alg always, the others
// when they are not empty.
func appendCanonicalKey(b []byte, key TEEPubKey) []byte {
	members := [...]struct {
		name, value string
		always      bool
	}{
		{"alg", key.Alg, true},
		{"crv", key.Crv, false},
		{"e", key.E, false},
		{"kty", key.Kty, true},
		{"n", key.N, false},
		{"x", key.X, false},
		{"y", key.Y, false},
	}
	b = append(b, '{')
	first := true
	for _, m := range members {
		if m.value == "" && !m.always {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, m.name...)
		b = append(b, '"', ':')
		b = appendCanonicalString(b, m.value)
	}
	return append(b, '}')
}

// ReportDataFor returns the report-data value that the evidence of the KBS
// tee carries for digest. It is zero-padded (or cut) to 64 bytes for TEEs
// whose field is 64 bytes, and resized to 32 bytes for a plain TPM quote
// and for the SPDM nonce of NVIDIA GPU reports. For sample evidence and the
// Azure vTPM quote nonce it is the digest itself.
//
// Trustee's NVIDIA attester takes the first 32 bytes of the device digest
// as the SPDM nonce, and its verifier expects them there.
func ReportDataFor(tee string, digest []byte) []byte {
	switch tee {
	case "snp", "tdx", "sgx", "cca", "csv":
		return resize(digest, 64)
	case "tpm", "nvidia":
		return resize(digest, 32)
	}
	return append([]byte(nil), digest...)
}

func resize(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}
