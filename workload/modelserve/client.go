package modelserve

import (
	"context"
	"net/http"

	"github.com/cloister-dev/cloister/workload"
)

// Client is a party of a model-serving workload. Every request goes over
// a connection that verified the workload's evidence, measurement and
// manifest digest, and so the model digest.
type Client struct {
	api workload.APIClient
}

// NewClient returns a Client that reaches the workload through w.
func NewClient(w *workload.Client) *Client {
	return &Client{api: workload.APIClient{HTTP: w.HTTPClient(), Workload: "modelserve"}}
}

// Info returns the served model's description.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var info Info
	if err := c.api.Do(ctx, http.MethodGet, "/v1/model", nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Predict returns the model's outputs for inputs.
func (c *Client) Predict(ctx context.Context, inputs [][]float64) ([][]float64, error) {
	var resp PredictResponse
	if err := c.api.Do(ctx, http.MethodPost, "/v1/predict", PredictRequest{Inputs: inputs}, &resp); err != nil {
		return nil, err
	}
	return resp.Outputs, nil
}
