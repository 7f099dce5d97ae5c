package aggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/cloister-dev/cloister/workload"
)

// Client is a party of an aggregation workload. Every request goes over a
// connection that verified the workload's evidence, measurement and
// manifest digest.
type Client struct {
	http *http.Client
}

// NewClient returns a Client that reaches the workload through w.
func NewClient(w *workload.Client) *Client {
	return &Client{http: w.HTTPClient()}
}

// Status returns the open round and the workload's configuration.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Submit sends update as this party's contribution to round.
func (c *Client) Submit(ctx context.Context, round uint64, update []float64) error {
	return c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/rounds/%d/updates", round), UpdateRequest{Update: update}, nil)
}

// Close closes round and returns its aggregate.
func (c *Client) Close(ctx context.Context, round uint64) (*Result, error) {
	var res Result
	if err := c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/rounds/%d/close", round), struct{}{}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Result returns the aggregate of a closed round.
func (c *Client) Result(ctx context.Context, round uint64) (*Result, error) {
	var res Result
	if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/rounds/%d/aggregate", round), nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			return fmt.Errorf("aggregate: encoding the request: %w", err)
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
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("aggregate: decoding the response to %s %s: %w", method, path, err)
	}
	return nil
}
