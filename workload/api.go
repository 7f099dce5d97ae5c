package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// The HTTP APIs of the workloads send JSON bodies, and every error
// response is the JSON object {"error": message}.

// maxErrorBody bounds the error response body that a client reads.
const maxErrorBody = 64 << 10

// WriteJSON sends v as a JSON response with the status code status. It
// encodes v before it sends the status, so that a value that JSON cannot
// carry, such as an infinite float, becomes a 500 error response rather
// than a 200 with an empty body. It returns the encoding or write error.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		err = fmt.Errorf("the response cannot be encoded as JSON: %w", err)
		status = http.StatusInternalServerError
		body, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if _, werr := w.Write(append(body, '\n')); err == nil {
		err = werr
	}
	return err
}

// WriteError sends err as the error response {"error": message} with the
// status code status, and returns the write error.
func WriteError(w http.ResponseWriter, status int, err error) error {
	return WriteJSON(w, status, map[string]string{"error": err.Error()})
}

// IsBodyTooLarge reports whether err comes from an http.MaxBytesReader
// whose limit the request body passed, which handlers answer with 413.
func IsBodyTooLarge(err error) bool {
	var tooLarge *http.MaxBytesError
	return errors.As(err, &tooLarge)
}

// ErrorMessage returns the message of an error response body, and false
// when body is not a JSON object with a non-empty "error" string.
func ErrorMessage(body []byte) (string, bool) {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return "", false
	}
	return e.Error, true
}

// APIError is an error response of a workload's HTTP API.
type APIError struct {
	// Workload names the workload package in the error text, such as
	// "custody".
	Workload string
	Status   int
	Message  string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: workload responded %d %s: %s", e.Workload, e.Status, http.StatusText(e.Status), e.Message)
}

// ReadAPIError reads the error response resp of the workload package
// name. A body that is not an error object is the message unchanged.
func ReadAPIError(name string, resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg, ok := ErrorMessage(body)
	if !ok {
		msg = string(body)
	}
	return &APIError{Workload: name, Status: resp.StatusCode, Message: msg}
}

// APIClient sends JSON requests to a workload's HTTP API over an HTTP
// client from Client.HTTPClient.
type APIClient struct {
	HTTP *http.Client
	// Workload names the workload package in errors, such as "custody".
	Workload string
}

// Do sends body, when not nil, as JSON with method to path, such as
// "/v1/status", and decodes a 2xx response into out, when not nil. Any
// other status returns an *APIError.
func (c *APIClient) Do(ctx context.Context, method, path string, body, out any) error {
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			return fmt.Errorf("%s: encoding the request: %w", c.Workload, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://workload"+path, &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	if resp.StatusCode/100 != 2 {
		return ReadAPIError(c.Workload, resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: decoding the response to %s %s: %w", c.Workload, method, path, err)
	}
	return nil
}

// RequireParty returns the party of r, which Serve identifies, or sends a
// 403 error response and returns false for a request that carries none,
// because the handler runs outside Serve.
func RequireParty(w http.ResponseWriter, r *http.Request) (Party, bool) {
	p, ok := PartyFromContext(r.Context())
	if !ok {
		WriteError(w, http.StatusForbidden, errors.New("the request carries no party: serve the handler with workload.Serve, which identifies the party by its TLS client key"))
	}
	return p, ok
}
