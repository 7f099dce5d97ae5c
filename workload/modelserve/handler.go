package modelserve

import (
	"fmt"
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
		workload.WriteJSON(w, http.StatusOK, s.Info())
	})
	mux.HandleFunc("POST /v1/predict", func(w http.ResponseWriter, r *http.Request) {
		party, ok := workload.RequireParty(w, r)
		if !ok {
			return
		}
		// About 25 bytes per JSON number plus the envelope.
		limit := int64(s.m.maxBatch())*int64(s.model.Inputs+1)*32 + 1024
		// The decoder stops past the batch limit and the model's input
		// width, so a body of short numbers cannot allocate more.
		inputs, err := workload.DecodeMatrix(http.MaxBytesReader(w, r.Body, limit), "inputs", s.m.maxBatch(), s.model.Inputs)
		if err != nil {
			log.Info("modelserve: predict body rejected", "party", party.Name, "error", err)
			if workload.IsBodyTooLarge(err) {
				workload.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the predict body is larger than %d bytes; send at most %d arrays of %d numbers", limit, s.m.maxBatch(), s.model.Inputs))
				return
			}
			workload.WriteError(w, http.StatusBadRequest, fmt.Errorf("invalid predict body: %v: send {\"inputs\": [[numbers]]}, at most %d arrays of %d numbers", err, s.m.maxBatch(), s.model.Inputs))
			return
		}
		out, err := s.Predict(inputs)
		if err != nil {
			log.Info("modelserve: predict rejected", "party", party.Name, "error", err)
			workload.WriteError(w, http.StatusBadRequest, err)
			return
		}
		log.Info("modelserve: predicted", "party", party.Name, "inputs", len(inputs))
		workload.WriteJSON(w, http.StatusOK, PredictResponse{Outputs: out})
	})
	return mux
}

// APIError is an error response of the workload.
type APIError = workload.APIError
