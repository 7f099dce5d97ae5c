package server

import (
	"context"
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
		route         string // the request path, when not /kbs/v0/resource/ followed by path
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
			reason: `does not use the Bearer scheme; call /kbs/v0/auth and /kbs/v0/attest again, or send "Authorization: Bearer <attestation token>"`,
		},
		{
			name: "empty bearer", path: testSecretPath, authorization: "Bearer ",
			variant: kbs.ProblemTokenNotFound, verdict: "no_token", resource: testSecretPath,
			reason: "uses the Bearer scheme but carries no token",
		},
		{
			name: "unattested session", path: testSecretPath, cookie: true,
			variant: kbs.ProblemTokenNotFound, verdict: "no_token", requester: "session", resource: testSecretPath,
			reason: "the start of the SHA-256 of its value) names a session that is unknown, expired or not attested; call /kbs/v0/auth and /kbs/v0/attest again",
		},
		{
			name: "unattested session and basic authorization", path: testSecretPath, cookie: true, authorization: "Basic dXNlcjpwYXNz",
			variant: kbs.ProblemTokenNotFound, verdict: "no_token", requester: "session", resource: testSecretPath,
			reason: "names a session that is unknown, expired or not attested, and the Authorization header does not use the Bearer scheme",
		},
		{
			name: "empty path", path: "",
			variant: kbs.ProblemPluginInternalError, verdict: "invalid_path", resource: `""`,
			reason: `resource path "" has 1 of the 3 segments repository/type/tag`,
		},
		{
			name: "bare resource route", route: "/kbs/v0/resource",
			variant: kbs.ProblemPluginInternalError, verdict: "invalid_path", resource: `""`,
			reason: `resource path "" has 1 of the 3 segments repository/type/tag`,
		},
		{
			name: "two segments", path: "default/key",
			variant: kbs.ProblemPluginInternalError, verdict: "invalid_path", resource: `"default/key"`,
			reason: "has 2 of the 3 segments repository/type/tag; use a path such as default/key/db",
		},
		{
			name: "escaped newline", path: "default/key/db%0Aforged",
			variant: kbs.ProblemPluginInternalError, verdict: "invalid_path", resource: `"default/key/db\nforged"`,
			reason: `segment "db\nforged" must be letters`,
		},
		{
			name: "long path", path: "default/key/" + strings.Repeat("x", 100000) + "%20",
			variant: kbs.ProblemPluginInternalError, verdict: "invalid_path",
			resource: `"default/key/` + strings.Repeat("x", 244) + `"... (100013 bytes)`,
			reason:   `"... (100001 bytes) must be letters, digits`,
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
				route := tt.route
				if route == "" {
					route = "/kbs/v0/resource/" + tt.path
				}
				req, err := http.NewRequest(http.MethodGet, ts.URL+route, nil)
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
				if len(rec.Reason) > 1024 {
					t.Errorf("reason is %d bytes, want a short one", len(rec.Reason))
				}
				if v, err := ts.store.VerifyAudit(context.Background()); err != nil || v.Broken != nil {
					t.Errorf("VerifyAudit = %+v, %v; want an intact chain", v, err)
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
