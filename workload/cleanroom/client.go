package cleanroom

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/cloister-dev/cloister/workload"
)

// Client is one party's view of a clean room: it checks its own place in
// the manifest before it connects, and every connection verifies the
// workload's evidence, measurement and manifest digest (workload.Client).
type Client struct {
	manifest *Manifest
	party    Party
	http     *http.Client
}

// ClientConfig configures NewClient.
type ClientConfig struct {
	// Addr is the workload's host:port.
	Addr string
	// Manifest is the manifest file the party agreed to, as raw bytes.
	Manifest []byte
	// Party is this party's name in the manifest.
	Party string
	// Key is this party's private key.
	Key crypto.Signer
	// Expect holds the trust anchors, appraisal rules and expected
	// measurement. Its Manifest is set from Manifest.
	Expect workload.Expect
}

// NewClient parses the manifest and checks that Key is the key the
// manifest lists for Party, so that a wrong key fails before any
// connection.
func NewClient(c ClientConfig) (*Client, error) {
	m, digest, err := ParseManifest(c.Manifest)
	if err != nil {
		return nil, err
	}
	p, ok := m.Party(c.Party)
	if !ok {
		return nil, fmt.Errorf("party %q is not in manifest %q (manifest %s)", c.Party, m.Name, digest)
	}
	h, err := workload.KeyHash(c.Key.Public())
	if err != nil {
		return nil, err
	}
	if h != p.KeySHA256 {
		return nil, fmt.Errorf("the key's SHA-256 is %s, but manifest %q lists %s for party %q; use that party's key", h, m.Name, p.KeySHA256, p.Name)
	}
	cert, err := workload.ClientCertificate(c.Key, c.Party)
	if err != nil {
		return nil, err
	}
	expect := c.Expect
	expect.Manifest = digest
	wc, err := workload.NewClient(c.Addr, expect, cert)
	if err != nil {
		return nil, err
	}
	return &Client{manifest: m, party: p, http: wc.HTTPClient()}, nil
}

// Status returns the workload's manifest digest and the missing tables.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if _, err := c.do(ctx, http.MethodGet, PathStatus, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Upload sends the CSV file of table, which must be this party's.
func (c *Client) Upload(ctx context.Context, table string, body io.Reader) (*UploadResponse, error) {
	t, ok := c.manifest.Table(table)
	if !ok {
		return nil, fmt.Errorf("table %q is not in manifest %q", table, c.manifest.Name)
	}
	if t.Party != c.party.Name {
		return nil, fmt.Errorf("table %q belongs to party %q, not to %q", table, t.Party, c.party.Name)
	}
	var out UploadResponse
	if _, err := c.do(ctx, http.MethodPut, PathTables+url.PathEscape(table), body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Result returns the result and its JSON as the workload sent it, for
// VerifyResultMAC.
func (c *Client) Result(ctx context.Context) (*Result, []byte, error) {
	var r Result
	raw, err := c.do(ctx, http.MethodGet, PathResult, nil, &r)
	if err != nil {
		return nil, nil, err
	}
	return &r, raw, nil
}

// maxResponseBytes bounds a response body the client reads.
const maxResponseBytes = 256 << 20

// do sends one request and decodes a 200 response into out, returning
// the raw body.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "https://workload"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/csv")
	}

	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error repeats the placeholder URL, so the method and path
		// replace it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()

	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, err
	}

	if resp.StatusCode != http.StatusOK {
		if msg, ok := workload.ErrorMessage(raw); ok {
			return nil, &StatusError{Code: resp.StatusCode, Message: msg}
		}
		return nil, &StatusError{Code: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	}
	// UseNumber keeps 64-bit integers in the result exact.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return nil, fmt.Errorf("invalid response from %s %s: %w", method, path, err)
	}
	return raw, nil
}

// StatusError is a request the workload rejected.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("the clean room rejected the request (HTTP %d): %s", e.Code, e.Message)
}
