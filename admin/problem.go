package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/cloister-dev/cloister/store"
)

// Problem is an RFC 7807 problem document, the body of every error
// response. The client returns it as the error.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// RequestID is the response's X-Request-Id, under which the service
	// logged the request. The client sets it; it is not part of the body.
	RequestID string `json:"-"`
}

func (p *Problem) Error() string {
	text := fmt.Sprintf("admin API: %d %s", p.Status, p.Title)
	if p.Detail != "" {
		text += ": " + p.Detail
	}
	if p.RequestID != "" {
		text += " (request ID " + p.RequestID + ")"
	}
	return text
}

func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Problem{Type: "about:blank", Title: title, Status: status, Detail: detail})
}

// writeError maps a store or request error to a problem response, and
// appends an audit record when the request was a change. Errors without a
// known kind are logged and reported as 500 without detail, because they
// may name internal state.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, title, detail := h.problemFor(r, err)
	h.auditRejectedChange(r, status, detail)
	writeProblem(w, status, title, detail)
}

// problemFor returns the status, title and detail of the problem response
// for err, and logs the errors that an operator must see.
func (h *Handler) problemFor(r *http.Request, err error) (status int, title, detail string) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, "Request body too large",
			fmt.Sprintf("the request body is larger than the limit of %d bytes", tooLarge.Limit)
	case errors.Is(err, store.ErrInvalid), errors.Is(err, errBadRequest):
		return http.StatusBadRequest, "Invalid request", err.Error()
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "Not found", err.Error()
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, "Conflict", err.Error()
	case errors.Is(err, errNoPolicyValidator):
		// A set-up fault of the service, not of the request.
		h.cfg.Logger.Error("admin request rejected", "request_id", requestID(r), "method", r.Method, "path", r.URL.Path, "error", err)
		return http.StatusServiceUnavailable, "Service unavailable", err.Error()
	case errors.Is(err, store.ErrForeignSecrets):
		// Replicas with different master keys are a set-up fault that an
		// operator must see in the log, not only the client.
		h.cfg.Logger.Warn("admin request rejected", "request_id", requestID(r), "method", r.Method, "path", r.URL.Path, "error", err)
		return http.StatusConflict, "Conflict", err.Error()
	default:
		h.cfg.Logger.Error("admin request failed", "request_id", requestID(r), "method", r.Method, "path", r.URL.Path, "error", err)
		return http.StatusInternalServerError, "Internal server error", "the request failed; the server log has the cause"
	}
}

// errNoPolicyValidator is the error for a policy upload to a handler
// whose Config.ValidatePolicy is nil.
var errNoPolicyValidator = errors.New("the service has no policy validator configured (admin.Config.ValidatePolicy is nil), so it stores no policy; run a service that validates policies, such as cloister serve")

// errBadRequest marks a malformed request that the store never saw.
var errBadRequest = errors.New("bad request")

// badRequest returns an invalid request error with the formatted message,
// which writeError reports as 400 with the message as the detail.
func badRequest(format string, args ...any) error {
	return invalidRequest(fmt.Errorf(format, args...))
}

// invalidRequest marks err as an invalid request, which writeError reports
// as 400 with err's message as the detail.
func invalidRequest(err error) error { return invalidRequestError{err} }

type invalidRequestError struct{ err error }

func (e invalidRequestError) Error() string        { return e.err.Error() }
func (e invalidRequestError) Is(target error) bool { return target == errBadRequest }
func (e invalidRequestError) Unwrap() error        { return e.err }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
