package custody

import (
	"encoding/base64"
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
		workload.WriteJSON(w, http.StatusOK, KeyList{Keys: s.PublicKeys()})
	})
	mux.HandleFunc("GET /v1/keys/{name}", func(w http.ResponseWriter, r *http.Request) {
		pub, err := s.PublicKey(r.PathValue("name"))
		if err != nil {
			workload.WriteError(w, statusOf(err), err)
			return
		}
		workload.WriteJSON(w, http.StatusOK, pub)
	})
	mux.HandleFunc("POST /v1/keys/{name}/sign", func(w http.ResponseWriter, r *http.Request) {
		sign(s, log, w, r)
	})
	return mux
}

func sign(s *Service, log *slog.Logger, w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	party, ok := workload.RequireParty(w, r)
	if !ok {
		return
	}
	// Base64 makes the body 4/3 of the message, plus the envelope.
	body := http.MaxBytesReader(w, r.Body, MaxMessageSize*4/3+1024)
	message, err := decodeSignRequest(body)
	if err != nil {
		log.Info("custody: sign request body rejected", "party", party.Name, "key", name, "error", err)
		if workload.IsBodyTooLarge(err) {
			workload.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the message is larger than %d bytes; sign a digest of it instead", MaxMessageSize))
			return
		}
		workload.WriteError(w, http.StatusBadRequest, fmt.Errorf("invalid sign request body: %w: send {\"message\": base64}", err))
		return
	}
	sig, err := s.Sign(party.Name, name, message)
	if err != nil {
		log.Info("custody: signing rejected", "party", party.Name, "key", name, "error", err)
		workload.WriteError(w, statusOf(err), err)
		return
	}
	log.Info("custody: signed", "party", party.Name, "key", name, "message_bytes", len(message))
	workload.WriteJSON(w, http.StatusOK, SignResponse{Key: name, Type: s.keys[name].typ, Signature: sig})
}

// decodeSignRequest reads the body {"message": base64} and returns the
// decoded message. It rejects other or repeated members, a missing or null
// message and anything after the object, so that a misspelled member does
// not sign the empty message. Errors do not quote the message, which is a
// party's data.
func decodeSignRequest(r io.Reader) ([]byte, error) {
	var message []byte
	err := workload.DecodeMember(r, "message", func(dec *json.Decoder) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		encoded, ok := tok.(string)
		if !ok {
			return fmt.Errorf("the value is %s, not a base64 string", workload.TokenKind(tok))
		}
		if message, err = base64.StdEncoding.DecodeString(encoded); err != nil {
			return fmt.Errorf("the value is not standard base64 with padding: %w", err)
		}
		return nil
	})
	return message, err
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrUnknownKey):
		return http.StatusNotFound
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrPrefix):
		return http.StatusForbidden
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// APIError is an error response of the workload.
type APIError = workload.APIError
