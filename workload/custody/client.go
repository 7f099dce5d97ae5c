package custody

import (
	"context"
	"net/http"
	"net/url"

	"github.com/cloister-dev/cloister/workload"
)

// Client is a party of a custody workload. Every request goes over a
// connection that verified the workload's evidence, measurement and
// manifest digest.
type Client struct {
	api workload.APIClient
}

// NewClient returns a Client that reaches the workload through w.
func NewClient(w *workload.Client) *Client {
	return &Client{api: workload.APIClient{HTTP: w.HTTPClient(), Workload: "custody"}}
}

// PublicKeys returns the public keys the workload holds.
func (c *Client) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	var list KeyList
	if err := c.api.Do(ctx, http.MethodGet, "/v1/keys", nil, &list); err != nil {
		return nil, err
	}
	return list.Keys, nil
}

// PublicKey returns the public key of the key name.
func (c *Client) PublicKey(ctx context.Context, name string) (*PublicKey, error) {
	var pub PublicKey
	if err := c.api.Do(ctx, http.MethodGet, "/v1/keys/"+url.PathEscape(name), nil, &pub); err != nil {
		return nil, err
	}
	return &pub, nil
}

// Sign requests a signature of message with the key name. A nil message
// is the empty message.
func (c *Client) Sign(ctx context.Context, name string, message []byte) (*SignResponse, error) {
	if message == nil {
		// JSON encodes a nil slice as null, which the workload rejects.
		message = []byte{}
	}
	var resp SignResponse
	if err := c.api.Do(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(name)+"/sign", SignRequest{Message: message}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
