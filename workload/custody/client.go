package custody

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/cloister-dev/cloister/workload"
)

// Client is a party of a custody workload. Every request goes over a
// connection that verified the workload's evidence, measurement and
// manifest digest.
type Client struct {
	http *http.Client
}

// NewClient returns a Client that reaches the workload through w.
func NewClient(w *workload.Client) *Client {
	return &Client{http: w.HTTPClient()}
}

// PublicKeys returns the public keys the workload holds.
func (c *Client) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	var list KeyList
	if err := c.do(ctx, http.MethodGet, "/v1/keys", nil, &list); err != nil {
		return nil, err
	}
	return list.Keys, nil
}

// PublicKey returns the public key of the key name.
func (c *Client) PublicKey(ctx context.Context, name string) (*PublicKey, error) {
	var pub PublicKey
	if err := c.do(ctx, http.MethodGet, "/v1/keys/"+url.PathEscape(name), nil, &pub); err != nil {
		return nil, err
	}
	return &pub, nil
}

// Sign requests a signature of message with the key name.
func (c *Client) Sign(ctx context.Context, name string, message []byte) (*SignResponse, error) {
	var resp SignResponse
	if err := c.do(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(name)+"/sign", SignRequest{Message: message}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			return fmt.Errorf("custody: encoding the request: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://workload"+path, &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("custody: decoding the response to %s %s: %w", method, path, err)
	}
	return nil
}
