package ratls

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"slices"

	"github.com/fxamacker/cbor/v2"

	"github.com/cloister-dev/cloister/attest"
)

// Claim names of the tagged-evidence claims map. "pubkey-hash" and "nonce"
// are the names Gramine and rats-tls use; the others are Cloister's.
const (
	claimPubkeyHash = "pubkey-hash"
	claimNonce      = "nonce"
	// claimBinding holds BindingV1; its presence selects Cloister's
	// binding rule and separates Cloister's claims from any other use of
	// the same report data.
	claimBinding = "cloister-ratls"
	claimIssued  = "iat"
	claimRole    = "role"
)

// BindingV1 is the value of the "cloister-ratls" claim of certificates
// that follow this package's binding rule.
const BindingV1 = "v1"

// Hash algorithm identifiers of the IANA Named Information registry, as
// Gramine encodes the "pubkey-hash" claim.
const (
	hashSHA256 = 1
	hashSHA384 = 7
	hashSHA512 = 8
)

// Role is the end of a TLS connection that a certificate was issued for.
// It is part of the attested claims, so that a server's certificate
// cannot pass as a client's and the other way around.
type Role string

const (
	RoleServer Role = "server"
	RoleClient Role = "client"
)

// CertClaims is the decoded claims map of tagged evidence.
type CertClaims struct {
	// PubkeyHashAlg is the IANA hash algorithm identifier and PubkeyHash
	// the hash of the certificate's SubjectPublicKeyInfo.
	PubkeyHashAlg uint64     `json:"pubkey_hash_alg"`
	PubkeyHash    attest.Hex `json:"pubkey_hash"`
	// Nonce is the freshness value of the certificate, when present.
	Nonce attest.Hex `json:"nonce,omitempty"`
	// Binding is the "cloister-ratls" claim, empty for certificates that
	// other software issued.
	Binding string `json:"cloister_ratls,omitempty"`
	// IssuedAt is the issuance time in Unix seconds (Cloister only).
	IssuedAt int64 `json:"iat,omitempty"`
	// Role is the role the certificate was issued for (Cloister only).
	Role Role `json:"role,omitempty"`
	// Unknown lists the names of claims this package does not interpret.
	Unknown []string `json:"unknown,omitempty"`
}

// ParseClaims decodes a serialized claims map. Unknown claims are kept by
// name and ignored, as Gramine does; "pubkey-hash" is required.
func ParseClaims(buf []byte) (*CertClaims, error) {
	const field = "claims"
	var m map[string]cbor.RawMessage
	if err := decMode.Unmarshal(buf, &m); err != nil {
		return nil, attest.Malformed(field, "not a CBOR map with text keys", err)
	}
	c := &CertClaims{}
	for name, raw := range m {
		var err error
		switch name {
		case claimPubkeyHash:
			c.PubkeyHashAlg, c.PubkeyHash, err = parsePubkeyHash(raw)
		case claimNonce:
			var nonce []byte
			err = decMode.Unmarshal(raw, &nonce)
			c.Nonce = nonce
		case claimBinding:
			err = decMode.Unmarshal(raw, &c.Binding)
		case claimIssued:
			err = decMode.Unmarshal(raw, &c.IssuedAt)
		case claimRole:
			var s string
			err = decMode.Unmarshal(raw, &s)
			c.Role = Role(s)
		default:
			c.Unknown = append(c.Unknown, name)
		}
		if err != nil {
			return nil, attest.Malformed(field+"."+name, "invalid claim value", err)
		}
	}
	slices.Sort(c.Unknown)
	if c.PubkeyHash == nil {
		return nil, attest.Errorf(attest.ErrMalformed, field, "the %q claim is missing, so no key is bound", claimPubkeyHash)
	}
	if c.Binding != "" && c.Binding != BindingV1 {
		return nil, attest.Errorf(attest.ErrUnsupported, field+"."+claimBinding, "binding version %q; this Cloister reads %q", c.Binding, BindingV1)
	}
	return c, nil
}

// parsePubkeyHash decodes the "pubkey-hash" claim, a byte string that
// contains the serialized array [hash-alg-id, hash-value], as Gramine writes it.
func parsePubkeyHash(raw cbor.RawMessage) (uint64, []byte, error) {
	var inner []byte
	if err := decMode.Unmarshal(raw, &inner); err != nil {
		return 0, nil, err
	}
	var entry []cbor.RawMessage
	if err := decMode.Unmarshal(inner, &entry); err != nil {
		return 0, nil, err
	}
	if len(entry) != 2 {
		return 0, nil, fmt.Errorf("hash entry has %d elements; expected 2", len(entry))
	}
	var alg uint64
	var value []byte
	if err := decMode.Unmarshal(entry[0], &alg); err != nil {
		return 0, nil, fmt.Errorf("hash algorithm: %w", err)
	}
	if err := decMode.Unmarshal(entry[1], &value); err != nil {
		return 0, nil, fmt.Errorf("hash value: %w", err)
	}
	h, err := hashFor(alg)
	if err != nil {
		return 0, nil, err
	}
	if len(value) != h.Size() {
		return 0, nil, fmt.Errorf("hash value of %d bytes for algorithm %d; expected %d", len(value), alg, h.Size())
	}
	return alg, value, nil
}

func hashFor(alg uint64) (hash.Hash, error) {
	switch alg {
	case hashSHA256:
		return sha256.New(), nil
	case hashSHA384:
		return sha512.New384(), nil
	case hashSHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("hash algorithm %d is not SHA-256 (1), SHA-384 (7) or SHA-512 (8)", alg)
}

// marshalClaims encodes Cloister's claims map deterministically. The
// returned buffer is what the report data hashes.
func marshalClaims(spkiHash, nonce []byte, issuedAt int64, role Role) ([]byte, error) {
	entry, err := encMode.Marshal([]any{uint64(hashSHA256), spkiHash})
	if err != nil {
		return nil, err
	}
	return encMode.Marshal(map[string]any{
		claimBinding:    BindingV1,
		claimPubkeyHash: entry,
		claimNonce:      nonce,
		claimIssued:     issuedAt,
		claimRole:       string(role),
	})
}
