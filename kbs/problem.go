package kbs

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
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
	ProblemSerdeError          = "SerdeError"
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
	return fmt.Sprintf("%s (HTTP %d): %s", printable(p.Variant()), p.Status, printable(p.Detail))
}

// printable returns s cut to 200 bytes, quoted with strconv.Quote when it
// is not valid UTF-8 or contains a character that is not printable, such as a
// newline or a terminal escape.
func printable(s string) string {
	const limit = 200
	cut := false
	if len(s) > limit {
		s, cut = strings.ToValidUTF8(s[:limit], ""), true
	}
	clean := utf8.ValidString(s)
	for _, r := range s {
		if !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if !clean {
		s = strconv.Quote(s)
	}
	if cut {
		s += "…"
	}
	return s
}

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
