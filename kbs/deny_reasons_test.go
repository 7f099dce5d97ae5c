package kbs

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestExplainDenial(t *testing.T) {
	payload := `{"submods":{"cpu0":{"ear.status":"contraindicated","cloister.reasons":[` +
		`{"rule":"reference-value","message":"no reference value snp.measurement is registered"}]}}}`
	token := "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	deny := &Problem{Type: ProblemTypePrefix + ProblemPolicyDeny, Detail: "Access denied by policy"}

	err := explainDenial(deny, token)
	if !errors.Is(err, deny) {
		t.Errorf("explained error does not wrap the problem: %v", err)
	}
	if !strings.Contains(err.Error(), "reference-value: no reference value snp.measurement is registered") {
		t.Errorf("error %q lacks the token's reason", err)
	}

	other := errors.New("connection refused")
	if got := explainDenial(other, token); got != other {
		t.Errorf("a non-deny error was changed: %v", got)
	}
	for _, bad := range []string{"", "a.b", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[")) + ".c"} {
		if got := explainDenial(deny, bad); got != error(deny) {
			t.Errorf("token %q: error changed to %v", bad, got)
		}
	}
}
