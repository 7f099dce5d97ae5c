package aggregate

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cloister-dev/cloister/workload"
)

// Client is a party of an aggregation workload. Every request goes over a
// connection that verified the workload's evidence, measurement and
// manifest digest.
type Client struct {
	api workload.APIClient
}

// NewClient returns a Client that reaches the workload through w.
func NewClient(w *workload.Client) *Client {
	return &Client{api: workload.APIClient{HTTP: w.HTTPClient(), Workload: "aggregate"}}
}

// Status returns the open round and the workload's configuration.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.api.Do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Submit sends update as this party's contribution to round.
func (c *Client) Submit(ctx context.Context, round uint64, update []float64) error {
	return c.api.Do(ctx, http.MethodPost, fmt.Sprintf("/v1/rounds/%d/updates", round), UpdateRequest{Update: update}, nil)
}

// Close closes round and returns its aggregate.
func (c *Client) Close(ctx context.Context, round uint64) (*Result, error) {
	var res Result
	if err := c.api.Do(ctx, http.MethodPost, fmt.Sprintf("/v1/rounds/%d/close", round), struct{}{}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Result returns the aggregate of a closed round.
func (c *Client) Result(ctx context.Context, round uint64) (*Result, error) {
	var res Result
	if err := c.api.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/rounds/%d/aggregate", round), nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
