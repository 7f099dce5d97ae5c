package custody

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
//	GET  /v1/keys              {"keys": [PublicKey...]}
//	GET  /v1/keys/{name}       PublicKey
//	POST /v1/keys/{name}/sign  body SignRequest, response SignResponse
//
// Errors are JSON objects {"error": message}.

// SignRequest is the body of POST /v1/keys/{name}/sign. Message is
// base64 in JSON.
type SignRequest struct {
	Message []byte `json:"message"`
}

// SignResponse carries the signature, base64 in JSON.
type SignResponse struct {
	Key       string  `json:"key"`
	Type      KeyType `json:"type"`
	Signature []byte  `json:"signature"`
}

// KeyList is the body of GET /v1/keys.
type KeyList struct {
	Keys []PublicKey `json:"keys"`
}

// NewHandler returns the API handler of s; log nil means slog.Default().
func NewHandler(s *Service, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, KeyList{Keys: s.PublicKeys()})
	})
	mux.HandleFunc("GET /v1/keys/{name}", func(w http.ResponseWriter, r *http.Request) {
		pub, err := s.PublicKey(r.PathValue("name"))
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, pub)
	})
	mux.HandleFunc("POST /v1/keys/{name}/sign", func(w http.ResponseWriter, r *http.Request) {
		sign(s, log, w, r)
	})
	return mux
}

func sign(s *Service, log *slog.Logger, w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	party, ok := workload.PartyFromContext(r.Context())
	if !ok {
		writeError(w, http.StatusForbidden, errors.New("the request carries no party: serve the handler with workload.Serve, which identifies the party by its TLS client key"))
		return
	}
	var req SignRequest
	// Base64 makes the body 4/3 of the message, plus the envelope.
	body := http.MaxBytesReader(w, r.Body, MaxMessageSize*4/3+1024)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("invalid sign request body: %v: send {\"message\": base64}", err))
		return
	}
	sig, err := s.Sign(party.Name, name, req.Message)
	if err != nil {
		log.Info("custody: signing rejected", "party", party.Name, "key", name, "error", err)
		writeError(w, statusOf(err), err)
		return
	}
	log.Info("custody: signed", "party", party.Name, "key", name, "message_bytes", len(req.Message))
	writeJSON(w, http.StatusOK, SignResponse{Key: name, Type: s.keys[name].typ, Signature: sig})
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrUnknownKey):
		return http.StatusNotFound
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrPrefix):
		return http.StatusForbidden
	}
	return http.StatusBadRequest
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
	return fmt.Sprintf("custody: workload responded %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
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
