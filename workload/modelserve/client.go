package modelserve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/cloister-dev/cloister/workload"
)

// Client is a party of a model-serving workload. Every request goes over
// a connection that verified the workload's evidence, measurement and
// manifest digest, and so the model digest.
type Client struct {
	http *http.Client
}

// NewClient returns a Client that reaches the workload through w.
func NewClient(w *workload.Client) *Client {
	return &Client{http: w.HTTPClient()}
}

// Info returns the served model's description.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var info Info
	if err := c.do(ctx, http.MethodGet, "/v1/model", nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Predict returns the model's outputs for inputs.
func (c *Client) Predict(ctx context.Context, inputs [][]float64) ([][]float64, error) {
	var resp PredictResponse
	if err := c.do(ctx, http.MethodPost, "/v1/predict", PredictRequest{Inputs: inputs}, &resp); err != nil {
		return nil, err
	}
	return resp.Outputs, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			return fmt.Errorf("modelserve: encoding the request: %w", err)
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
		return fmt.Errorf("modelserve: decoding the response to %s %s: %w", method, path, err)
	}
	return nil
}
