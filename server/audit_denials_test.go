package server

import (
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// TestResourceDenialsWithoutTokenAudited checks that resource requests
// that present no usable token, or an invalid path, each leave one deny
// record naming the outcome, what was missing and how to fix it.
func TestResourceDenialsWithoutTokenAudited(t *testing.T) {
	tests := []struct {
		name          string
		path          string
		authorization string
		cookie        bool // run /auth first and send its unattested session cookie
		variant       string
		verdict       string
		requester     string // "session" for the cookie's session reference
		resource      string
		reason        string
	}{
		{
			name: "no credential", path: testSecretPath,
			variant: kbs.ProblemTokenNotFound, verdict: "no_token", resource: testSecretPath,
			reason: "no session cookie and no bearer token; call /kbs/v0/auth and /kbs/v0/attest first",
		},
		{
			name: "basic authorization", path: testSecretPath, authorization: "Basic dXNlcjpwYXNz",
			variant: kbs.ProblemTokenNotFound, verdict: "no_token", resource: testSecretPath,
			reason: `is not a bearer token; send "Authorization: Bearer <attestation token>"`,
		},
		{
			name: "unattested session", path: testSecretPath, cookie: true,
			variant: kbs.ProblemTokenNotFound, verdict: "no_token", requester: "session", resource: testSecretPath,
			reason: "which is unknown, expired or not attested; call /kbs/v0/auth and /kbs/v0/attest again",
		},
		{
			name: "two segments", path: "default/key",
			variant: kbs.ProblemPluginInternalError, verdict: "invalid_path", resource: `"default/key"`,
			reason: "has 2 segments; use repository/type/tag",
		},
		{
			name: "escaped newline", path: "default/key/db%0Aforged",
			variant: kbs.ProblemPluginInternalError, verdict: "invalid_path", resource: `"default/key/db\nforged"`,
			reason: `segment "db\nforged" must be letters`,
		},
		{
			name: "long path", path: "default/key/" + strings.Repeat("x", 300) + "%20",
			variant: kbs.ProblemPluginInternalError, verdict: "invalid_path",
			resource: `"default/key/` + strings.Repeat("x", 244) + `"... (313 bytes)`,
			reason:   "must be letters",
		},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ts := startService(t, b, serviceOptions{allowEmulated: true})
				jar, _ := cookiejar.New(nil)
				if tt.cookie {
					auth(t, ts, jar)
				}
				req, err := http.NewRequest(http.MethodGet, ts.URL+"/kbs/v0/resource/"+tt.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.authorization != "" {
					req.Header.Set("Authorization", tt.authorization)
				}
				hc := &http.Client{Transport: ts.Client().Transport, Jar: jar}
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				wantProblemResponse(t, resp, tt.variant, http.StatusUnauthorized)

				rec := auditRecordOf(t, ts.store, store.AuditDeny)
				if rec.Verdict != tt.verdict {
					t.Errorf("verdict = %q, want %q", rec.Verdict, tt.verdict)
				}
				if rec.Resource != tt.resource {
					t.Errorf("resource = %s, want %s", rec.Resource, tt.resource)
				}
				if !strings.Contains(rec.Reason, tt.reason) {
					t.Errorf("reason = %q, want it to contain %q", rec.Reason, tt.reason)
				}
				if !strings.HasPrefix(rec.Reason, tt.variant+": ") {
					t.Errorf("reason = %q, want it to start with %q", rec.Reason, tt.variant+": ")
				}
				wantRequester := ""
				if tt.requester == "session" {
					wantRequester = sessionCookieRef(t, ts, jar)
				}
				if rec.Requester != wantRequester {
					t.Errorf("requester = %q, want %q", rec.Requester, wantRequester)
				}
				if rec.RequestID == "" {
					t.Error("request ID is empty")
				}
			})
		}
	})
}

// sessionCookieRef returns the audit name of the session cookie that jar
// contains for the service.
func sessionCookieRef(t *testing.T, ts *testService, jar http.CookieJar) string {
	t.Helper()
	for _, c := range jar.Cookies(mustURL(t, ts.URL+"/kbs/v0/")) {
		if c.Name == kbs.SessionCookie {
			return store.SessionRef(c.Value)
		}
	}
	t.Fatal("the cookie jar contains no session cookie")
	return ""
}
