package kbs

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/cloister-dev/cloister/internal/printable"
)

// ProblemTypePrefix starts the type of every KBS error body. The type is
// an identifier, not a resolvable URL.
const ProblemTypePrefix = "https://github.com/confidential-containers/kbs/errors/"

// The problem types of Trustee v0.21.0 that this server sends.
const (
	ProblemAttestationError    = "AttestationError"
	ProblemTokenNotFound       = "TokenNotFound"
	ProblemTokenVerifierError  = "TokenVerifierError"
	ProblemPolicyDeny          = "PolicyDeny"
	ProblemPolicyEngineError   = "PolicyEngineError"
	ProblemPluginInternalError = "PluginInternalError"
	ProblemPluginNotFound      = "PluginNotFound"
	ProblemInvalidRequestPath  = "InvalidRequestPath"
	ProblemJweError            = "JweError"
	ProblemAdminAuthAccess     = "AdminAuthAccess"
	// ProblemAdminAuthInitialization is Trustee's variant for a failed
	// admin check on a resource write (POST or DELETE on a resource path).
	ProblemAdminAuthInitialization = "AdminAuthInitialization"
	ProblemSerdeError              = "SerdeError"
)

// Problem is a KBS error body, a reduced RFC 7807 problem document. Guests
// parse every 401 and 404 body as a Problem and give up when that fails.
type Problem struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	// Status is the HTTP status; it is not part of the body.
	Status int `json:"-"`
}

// NewProblem returns the problem of the named variant with Trustee's status
// for it: 404 for InvalidRequestPath and PluginNotFound, 401 for every
// other variant.
func NewProblem(variant, detail string) *Problem {
	status := http.StatusUnauthorized
	if variant == ProblemInvalidRequestPath || variant == ProblemPluginNotFound {
		status = http.StatusNotFound
	}
	return &Problem{Type: ProblemTypePrefix + variant, Detail: detail, Status: status}
}

// Error returns the variant (the type without ProblemTypePrefix), the
// status and the detail. A client's problem came from the network, so its
// type and detail are cut to 200 bytes and quoted when they contain anything
// but printable text.
func (p *Problem) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", printable.Text(p.Variant(), maxProblemText), p.Status, printable.Text(p.Detail, maxProblemText))
}

// maxEchoedValue is the length, in bytes, to which an error detail cuts a
// value from the request that it names, such as a version, a tee or a
// path. The response and the log line then stay short for any request
// within the size limits.
const maxEchoedValue = 128

// maxProblemText is the length, in bytes, to which Error cuts the type and
// detail of a problem.
const maxProblemText = 200

// Variant returns the type without ProblemTypePrefix.
func (p *Problem) Variant() string {
	if len(p.Type) > len(ProblemTypePrefix) && p.Type[:len(ProblemTypePrefix)] == ProblemTypePrefix {
		return p.Type[len(ProblemTypePrefix):]
	}
	return p.Type
}

// Write sends p as application/json with its status.
func (p *Problem) Write(w http.ResponseWriter) {
	body, _ := json.Marshal(p)
	writeJSONBody(w, p.Status, body)
}

// ParseProblem decodes an error body; status is the HTTP status it came
// with.
func ParseProblem(status int, body []byte) (*Problem, error) {
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Type == "" {
		return nil, fmt.Errorf("HTTP %d with a body that is not a KBS error object: %.200q", status, body)
	}
	p.Status = status
	return &p, nil
}
