package token

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// maxTokenSize bounds a token. Confidential Space PKI tokens with their x5c
// chain are about 11 KB; the bound leaves room for large claim sets.
const maxTokenSize = 1 << 20

// Token is a parsed compact JWS whose signature is not yet verified.
type Token struct {
	// Raw is the compact serialization.
	Raw string
	JWS *jose.JSONWebSignature
	// Header is the protected header of the only signature.
	Header jose.Header
	// Claims is the payload, decoded without verification. Numbers are
	// json.Number.
	Claims map[string]any
}

// extract returns the one compact JWS in data. The whole of data may be the
// token, or the token may sit in surrounding text such as a log line. More
// than one token is ambiguous and an error. A candidate is a run of
// base64url characters and dots with three non-empty parts whose header
// starts with "eyJ", the base64url encoding of `{"`.
func extract(data []byte) (string, error) {
	if len(data) > maxTokenSize {
		return "", fmt.Errorf("%d bytes is over the %d-byte limit for a token", len(data), maxTokenSize)
	}
	words := bytes.FieldsFunc(data, func(r rune) bool { return !isCompactJWSChar(r) })
	var found [][]byte
	for _, w := range words {
		if isCompactJWS(w) {
			found = append(found, w)
		}
	}
	switch len(found) {
	case 0:
		return "", errors.New("no JWS compact serialization (header.payload.signature) found")
	case 1:
		return string(found[0]), nil
	}
	return "", fmt.Errorf("%d tokens found, expected one; pass a file that contains a single token", len(found))
}

func isCompactJWSChar(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

func isCompactJWS(w []byte) bool {
	parts := bytes.Split(w, []byte("."))
	if len(parts) != 3 || !bytes.HasPrefix(parts[0], []byte("eyJ")) {
		return false
	}
	return len(parts[1]) > 0 && len(parts[2]) > 0
}

// Parse extracts the compact JWS from data and decodes it, accepting only
// the listed signature algorithms. It does not verify the signature.
func Parse(data []byte, algs []jose.SignatureAlgorithm) (*Token, error) {
	raw, err := extract(data)
	if err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("JWS: %d signatures, want 1", len(jws.Signatures))
	}
	if err := checkHeaderExtensions(jws.Signatures[0].Protected); err != nil {
		return nil, err
	}
	payload := jws.UnsafePayloadWithoutVerification()
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	return &Token{Raw: raw, JWS: jws, Header: jws.Signatures[0].Protected, Claims: claims}, nil
}

// rejectedHeaderParameters are the JWS extensions a token must not use.
// With "b64" false (RFC 7797), go-jose verifies the signature over the
// decoded payload instead of the compact text, so the token means
// different things to different verifiers. "crit" names extensions the
// verifier must understand, and none of the three services uses one.
var rejectedHeaderParameters = []jose.HeaderKey{"b64", "crit"}

// checkHeaderExtensions rejects a protected header that carries one of
// rejectedHeaderParameters.
func checkHeaderExtensions(header jose.Header) error {
	for _, name := range rejectedHeaderParameters {
		if value, ok := header.ExtraHeaders[name]; ok {
			return fmt.Errorf("JWS header parameter %q (value %v) is not allowed in an attestation token. Google, Microsoft and Intel tokens do not use it, so pass the token as the service issued it", name, value)
		}
	}
	return nil
}

// decodeClaims decodes a JWT claims set. Duplicate member names are
// rejected, because JSON parsers disagree on which one wins (RFC 7519,
// section 4).
func decodeClaims(payload []byte) (map[string]any, error) {
	if err := jsonvalue.WalkMembers(payload, nil); err != nil {
		return nil, fmt.Errorf("JWT claims: %w", err)
	}
	claims, err := jsonvalue.DecodeObject(payload)
	if err != nil {
		return nil, fmt.Errorf("JWT claims: %w", err)
	}
	return claims, nil
}

// decodeBase64 decodes standard or URL-safe base64, padded or not, as the
// services emit both.
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("invalid base64 %q", s)
}
