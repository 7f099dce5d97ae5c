package collateral

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
)

// ErrInvalidQuery reports a Query field whose value the upstream service
// does not define, found before any request URL is built from it.
var ErrInvalidQuery = errors.New("invalid collateral query")

// invalidQuery returns an ErrInvalidQuery error that names the field, its
// value, what the service accepts and the fix.
func invalidQuery(field, value, accepted, fix string) error {
	return fmt.Errorf("%w: %s %q is invalid: %s; %s", ErrInvalidQuery, field, value, accepted, fix)
}

// checkHexField checks that value is exactly size bytes in hexadecimal, in
// either case.
func checkHexField(field, value string, size int, fix string) error {
	if b, err := hex.DecodeString(value); err != nil || len(b) != size {
		return invalidQuery(field, value, fmt.Sprintf("expected exactly %d hexadecimal digits", 2*size), fix)
	}
	return nil
}

// serviceURL returns base with the path segments appended, each escaped.
func serviceURL(base string, segments ...string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("invalid collateral service URL %q: %w; set an absolute https URL", base, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("invalid collateral service URL %q: scheme or host missing; set an absolute https URL", base)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid collateral service URL %q: it has a query or fragment; set the URL up to the path only", base)
	}
	return u.JoinPath(segments...), nil
}
