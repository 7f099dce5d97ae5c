package kbs

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestExplainProblem(t *testing.T) {
	payload := `{"submods":{"cpu0":{"ear.status":"contraindicated","cloister.reasons":[` +
		`{"rule":"reference-value","message":"no reference value snp.measurement is registered"}]}}}`
	token := "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	deny := &Problem{Type: ProblemTypePrefix + ProblemPolicyDeny, Detail: "Access denied by policy"}

	err := explainProblem(deny, token)
	if !errors.Is(err, deny) {
		t.Errorf("explained error does not wrap the problem: %v", err)
	}
	if !strings.Contains(err.Error(), "reference-value: no reference value snp.measurement is registered") {
		t.Errorf("error %q lacks the token's reason", err)
	}

	for variant, cause := range map[string]string{
		ProblemPluginInternalError: "no resource at this path",
		ProblemTokenVerifierError:  "ear-signing-key.pem",
	} {
		p := &Problem{Type: ProblemTypePrefix + variant, Detail: "fixed text"}
		err := explainProblem(p, token)
		if !errors.Is(err, p) {
			t.Errorf("%s: explained error does not wrap the problem: %v", variant, err)
		}
		if !strings.Contains(err.Error(), cause) {
			t.Errorf("%s: error %q lacks the usual cause %q", variant, err, cause)
		}
	}

	// A problem type outside the KBS namespace gets no KBS cause.
	foreign := &Problem{Type: ProblemPluginInternalError, Detail: "fixed text"}
	if got := explainProblem(foreign, token); got != error(foreign) {
		t.Errorf("a problem of a foreign type was explained: %v", got)
	}

	other := errors.New("connection refused")
	if got := explainProblem(other, token); got != other {
		t.Errorf("a non-deny error was changed: %v", got)
	}
	for _, bad := range []string{"", "a.b", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[")) + ".c"} {
		if got := explainProblem(deny, bad); got != error(deny) {
			t.Errorf("token %q: error changed to %v", bad, got)
		}
	}
}

func TestProblemErrorText(t *testing.T) {
	for _, tc := range []struct {
		p    *Problem
		want string
	}{
		{NewProblem(ProblemPolicyDeny, "Access denied by policy"), "PolicyDeny (HTTP 401): Access denied by policy"},
		{NewProblem(ProblemInvalidRequestPath, "bad path"), "InvalidRequestPath (HTTP 404): bad path"},
		{&Problem{Type: "https://example.com/errors/Other", Status: 401, Detail: "d"}, "https://example.com/errors/Other (HTTP 401): d"},
		{&Problem{Type: ProblemTypePrefix + ProblemPolicyDeny, Status: 401, Detail: "two\nlines\x1b[31m"},
			`PolicyDeny (HTTP 401): "two\nlines\x1b[31m"`},
		{&Problem{Type: ProblemTypePrefix + ProblemPolicyDeny, Status: 401, Detail: strings.Repeat("d", 300)},
			"PolicyDeny (HTTP 401): " + strings.Repeat("d", 200) + "…"},
	} {
		if got := tc.p.Error(); got != tc.want {
			t.Errorf("Error() = %q, expected %q", got, tc.want)
		}
	}
}
