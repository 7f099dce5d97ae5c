package custody

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/cloister-dev/cloister/internal/printable"
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
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	var message []byte
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if tok != "message" {
			return nil, fmt.Errorf("unknown member %s; the body has one member, \"message\"", printable.Quote(fmt.Sprint(tok), 64))
		}
		if seen {
			return nil, errors.New(`member "message" appears twice`)
		}
		seen = true
		if tok, err = dec.Token(); err != nil {
			return nil, err
		}
		encoded, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("message is %s, not a base64 string", tokenKind(tok))
		}
		if message, err = base64.StdEncoding.DecodeString(encoded); err != nil {
			return nil, fmt.Errorf("message is not standard base64 with padding: %w", err)
		}
	}
	if !seen {
		return nil, errors.New(`member "message" is missing`)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New(`the body continues after the closing "}"; send exactly one JSON object`)
	}
	return message, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("the body ends where %q is expected", want)
	}
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("found %s where %q is expected", tokenKind(tok), want)
	}
	return nil
}

// tokenKind names the JSON type of tok without its value.
func tokenKind(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", tok.String())
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("a %T", tok)
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
