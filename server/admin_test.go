package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/store"
)

// adminForTest returns a constructor of the admin API handler over a
// service's store.
func adminForTest(t *testing.T) func(st store.Store) http.Handler {
	return func(st store.Store) http.Handler {
		h, err := admin.NewHandler(admin.Config{Store: st, APIKey: "test-admin-key-0123456789abcdef",
			Logger: quietLogger(), ValidatePolicy: ValidatePolicy})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
}

// Policies are checked at upload: each must compile and define its rule,
// and a resource policy must read one input shape.
func TestValidatePolicy(t *testing.T) {
	tests := []struct {
		name   string
		kind   store.PolicyKind
		module string
		valid  bool
	}{
		{"cloister resource", store.PolicyResource, "package p\n\nallow if input.token.submods.cpu0[\"ear.status\"] == \"affirming\"\n", true},
		{"trustee resource", store.PolicyResource, "package policy\n\nallow if input.submods.cpu0[\"ear.status\"] == \"affirming\"\n", true},
		{"both resource shapes", store.PolicyResource, "package p\n\nallow if {\n\tinput.token.x == 1\n\tdata.plugin == \"resource\"\n}\n", false},
		{"resource without allow", store.PolicyResource, "package p\n\ndeny := true\n", false},
		{"attestation", store.PolicyAttestation, "package p\n\ndeny := set()\n", true},
		{"attestation without deny", store.PolicyAttestation, "package p\n\nallow := true\n", false},
		{"deny reasons not strings", store.PolicyAttestation, "package p\n\ndeny contains {\"rule\": \"r\", \"claim\": \"c\", \"value\": true, \"expected\": false, \"message\": \"m\"} if true\n", false},
		{"deny reasons only for some claims", store.PolicyAttestation, "package p\n\ndeny contains {\"rule\": \"r\", \"claim\": \"c\", \"value\": \"v\", \"expected\": \"e\", \"message\": \"m\"} if input.claims.debug == true\n", true},
		{"does not compile", store.PolicyAttestation, "package p\n\ndeny := \n", false},
		{"unknown kind", store.PolicyKind("other"), "package p\n\nallow := true\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePolicy(tt.kind, "test", tt.module)
			if tt.valid && err != nil {
				t.Errorf("rejected: %v", err)
			}
			if !tt.valid && err == nil {
				t.Error("accepted")
			}
		})
	}
}

// A Trustee attestation policy is rejected with a reason that names its
// format and where to start a Cloister one.
func TestValidatePolicyNamesTrusteeFormat(t *testing.T) {
	module := "package policy\n\ndefault executables := 33\n\ntrust_claims := {\"executables\": executables}\n"
	err := ValidatePolicy(store.PolicyAttestation, "snp", module)
	if err == nil {
		t.Fatal("Trustee attestation policy accepted")
	}
	for _, want := range []string{"trust_claims", "deny", "cloister policy default snp"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
