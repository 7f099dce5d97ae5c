package workload

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAPIClientRoundTrip(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/echo", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusAccepted, map[string]string{"method": r.Method})
	})
	mux.HandleFunc("GET /v1/fail", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusConflict, errors.New("round 3 is not open"))
	})
	mux.HandleFunc("GET /v1/plain", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "plain text", http.StatusBadGateway)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	// The client sends every request to https://workload, so the test
	// transport redirects it to the plain HTTP test server.
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	c := &APIClient{HTTP: &http.Client{Transport: rewriteTransport{srv.URL, transport}}, Workload: "test"}
	ctx := context.Background()

	var out map[string]string
	if err := c.Do(ctx, http.MethodPost, "/v1/echo", struct{}{}, &out); err != nil {
		t.Fatalf("POST /v1/echo: %v", err)
	}
	if out["method"] != http.MethodPost {
		t.Errorf("response = %v, want method POST", out)
	}

	cases := []struct {
		path    string
		status  int
		message string
	}{
		{"/v1/fail", http.StatusConflict, "round 3 is not open"},
		{"/v1/plain", http.StatusBadGateway, "plain text\n"},
	}
	for _, tc := range cases {
		err := c.Do(ctx, http.MethodGet, tc.path, nil, nil)
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("GET %s: %v, want an *APIError", tc.path, err)
		}
		if apiErr.Status != tc.status {
			t.Errorf("GET %s: status %d, want %d", tc.path, apiErr.Status, tc.status)
		}
		if apiErr.Message != tc.message {
			t.Errorf("GET %s: message %q, want %q", tc.path, apiErr.Message, tc.message)
		}
		if !strings.HasPrefix(err.Error(), "test: workload responded") {
			t.Errorf("GET %s: error %q does not name the workload", tc.path, err)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	cases := []struct {
		body string
		want string
		ok   bool
	}{
		{`{"error":"no such key"}`, "no such key", true},
		{`{"error":""}`, "", false},
		{`{"message":"x"}`, "", false},
		{`not json`, "", false},
		{``, "", false},
	}
	for _, tc := range cases {
		got, ok := ErrorMessage([]byte(tc.body))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ErrorMessage(%q) = %q, %v; want %q, %v", tc.body, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRequirePartyOutsideServe(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if _, ok := RequireParty(rec, req); ok {
		t.Fatal("RequireParty accepted a request without a party")
	}
	if rec.Code != http.StatusForbidden {
		t.Errorf("status %d, want 403", rec.Code)
	}
	if msg, _ := ErrorMessage(rec.Body.Bytes()); !strings.Contains(msg, "workload.Serve") {
		t.Errorf("error %q does not name workload.Serve", msg)
	}

	p := Party{Name: "bank-a", KeyHash: Digest{1}}
	got, ok := RequireParty(httptest.NewRecorder(), req.WithContext(WithParty(req.Context(), p)))
	if !ok || got != p {
		t.Errorf("RequireParty = %v, %v; want %v", got, ok, p)
	}
}

// rewriteTransport sends every request to the test server base.
type rewriteTransport struct {
	base string
	next http.RoundTripper
}

func (rt rewriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	u, err := r.URL.Parse(rt.base + r.URL.Path)
	if err != nil {
		return nil, err
	}
	r.URL = u
	r.Host = u.Host
	return rt.next.RoundTrip(r)
}

// A value that JSON cannot carry becomes a 500 error response, not a 200
// with an empty body.
func TestWriteJSONUnencodableValue(t *testing.T) {
	rec := httptest.NewRecorder()
	err := WriteJSON(rec, http.StatusOK, map[string]float64{"total": math.Inf(1)})
	if err == nil || !strings.Contains(err.Error(), "cannot be encoded as JSON") {
		t.Errorf("WriteJSON error = %v, want one that says the value cannot be encoded", err)
	}
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	msg, ok := ErrorMessage(rec.Body.Bytes())
	if !ok || !strings.Contains(msg, "unsupported value") {
		t.Errorf("body = %q, want an error response that names the cause", rec.Body.String())
	}
}
