package workload

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloister-dev/cloister/internal/resourcepath"
)

// Digest is a SHA-256 digest: of a manifest's canonical bytes, or of a
// party's public key.
type Digest [sha256.Size]byte

// String returns the digest in lowercase hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is all zeros, which no real digest is.
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText encodes the digest as lowercase hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText decodes 64 hex digits.
func (d *Digest) UnmarshalText(text []byte) error {
	parsed, err := ParseDigest(string(text))
	if err != nil {
		return err
	}
	*d = parsed
	return nil
}

// ParseDigest decodes a SHA-256 digest written as 64 hex digits.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	s = strings.TrimSpace(s)
	if len(s) != 2*len(d) {
		return d, fmt.Errorf("invalid SHA-256 digest %q: it has %d characters, expected %d hex digits", s, len(s), 2*len(d))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("invalid SHA-256 digest %q: %v", s, err)
	}
	return d, nil
}

// Canonical returns the canonical bytes of a JSON document: object keys
// sorted by their UTF-8 bytes, no insignificant whitespace, strings
// re-escaped by encoding/json without HTML escaping, and numbers exactly as
// written. It rejects invalid JSON and trailing data.
//
// Numbers are kept as written rather than normalized as RFC 8785 does,
// so 1.0 and 1 give different digests. Parties hash the manifest file
// they agreed on, so they never rewrite its numbers.
func Canonical(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid manifest JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid manifest JSON: data after the top-level value at byte %d", dec.InputOffset())
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// HashManifest returns SHA-256 of the canonical bytes of the JSON
// manifest raw.
func HashManifest(raw []byte) (Digest, error) {
	canon, err := Canonical(raw)
	if err != nil {
		return Digest{}, err
	}
	return sha256.Sum256(canon), nil
}

// DecodeManifest hashes the manifest file raw (see HashManifest), decodes
// it into a new M, and validates it. Unknown fields are rejected, because
// a field that this version ignores could be a restriction the parties
// rely on. So are repeated keys and keys that match a field only without
// regard to case, which other JSON readers would read differently. kind
// names the manifest in errors, such as "custody".
func DecodeManifest[M any, PM interface {
	*M
	Validate() error
}](raw []byte, kind string) (*M, Digest, error) {
	digest, err := HashManifest(raw)
	if err != nil {
		return nil, Digest{}, err
	}
	if err := checkManifestKeys[M](raw, kind); err != nil {
		return nil, Digest{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	m := new(M)
	if err := dec.Decode(m); err != nil {
		return nil, Digest{}, fmt.Errorf("invalid %s manifest: %w", kind, err)
	}
	if err := PM(m).Validate(); err != nil {
		return nil, Digest{}, err
	}
	return m, digest, nil
}

// CheckResourcePath rejects a key broker resource path that the key broker
// would not serve (see resourcepath.Check).
func CheckResourcePath(path string) error { return resourcepath.Check(path) }
