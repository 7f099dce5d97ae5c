package modelserve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/cloister-dev/cloister/workload"
)

// The HTTP API, served over RA-TLS by workload.Serve:
//
//	GET  /v1/model    Info
//	POST /v1/predict  body PredictRequest, response PredictResponse
//
// Errors are JSON objects {"error": message}.

// PredictRequest is the body of POST /v1/predict.
type PredictRequest struct {
	Inputs [][]float64 `json:"inputs"`
}

// PredictResponse holds one output vector per input.
type PredictResponse struct {
	Outputs [][]float64 `json:"outputs"`
}

// NewHandler returns the API handler of s; log nil means slog.Default().
func NewHandler(s *Service, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/model", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Info())
	})
	mux.HandleFunc("POST /v1/predict", func(w http.ResponseWriter, r *http.Request) {
		party, ok := workload.PartyFromContext(r.Context())
		if !ok {
			writeError(w, http.StatusForbidden, errors.New("the request carries no party: serve the handler with workload.Serve, which identifies the party by its TLS client key"))
			return
		}
		// About 25 bytes per JSON number plus the envelope.
		limit := int64(s.m.maxBatch())*int64(s.model.Inputs+1)*32 + 1024
		var req PredictRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("invalid predict body: %v: send {\"inputs\": [[numbers]]}", err))
			return
		}
		out, err := s.Predict(req.Inputs)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		log.Info("modelserve: predicted", "party", party.Name, "inputs", len(req.Inputs))
		writeJSON(w, http.StatusOK, PredictResponse{Outputs: out})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// APIError is an error response of the workload.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("modelserve: workload responded %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

func readError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	return &APIError{Status: resp.StatusCode, Message: string(body)}
}
