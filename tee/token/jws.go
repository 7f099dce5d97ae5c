package token

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/go-jose/go-jose/v4"
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

// compactJWS matches a compact JWS whose header is a JSON object ("eyJ" is
// the base64url encoding of `{"`).
var compactJWS = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// extract returns the one compact JWS in data. The whole of data may be the
// token, or the token may sit in surrounding text such as a log line; more
// than one token is ambiguous and an error.
func extract(data []byte) (string, error) {
	if len(data) > maxTokenSize {
		return "", fmt.Errorf("%d bytes is over the %d-byte limit for a token", len(data), maxTokenSize)
	}
	trimmed := bytes.TrimSpace(data)
	if m := compactJWS.Find(trimmed); m != nil && len(m) == len(trimmed) {
		return string(m), nil
	}
	matches := compactJWS.FindAll(data, 3)
	switch len(matches) {
	case 0:
		return "", errors.New("no JWS compact serialization (header.payload.signature) found")
	case 1:
		return string(matches[0]), nil
	}
	return "", fmt.Errorf("%d tokens found; pass a file that holds one", len(matches))
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
	payload := jws.UnsafePayloadWithoutVerification()
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	return &Token{Raw: raw, JWS: jws, Header: jws.Signatures[0].Protected, Claims: claims}, nil
}

// decodeClaims decodes a JWT claims set. Duplicate member names are
// rejected, because JSON parsers disagree on which one wins (RFC 7519,
// section 4).
func decodeClaims(payload []byte) (map[string]any, error) {
	if err := checkDuplicateNames(payload); err != nil {
		return nil, fmt.Errorf("JWT claims: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("JWT claims: %w", err)
	}
	if claims == nil {
		return nil, errors.New("JWT claims: not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("JWT claims: data after the JSON object")
	}
	return claims, nil
}

// checkDuplicateNames walks the JSON text and fails on an object with a
// repeated member name.
func checkDuplicateNames(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 64 {
			return errors.New("JSON nested too deeply")
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				name, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := name.(string)
				if seen[key] {
					return fmt.Errorf("duplicate member %q", key)
				}
				seen[key] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk(0)
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
