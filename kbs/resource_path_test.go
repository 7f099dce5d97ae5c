package kbs

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/internal/resourcepath"
)

// An encoded slash inside a segment of the resource path stays part of
// that segment, which the path grammar then rejects. Decoding it first
// would turn default%2Fkey/db into the resource default/key/db, a path
// that the request does not spell.
func TestResourcePathEncodedSlash(t *testing.T) {
	s := &Server{Store: openTestStore(t), Logger: slog.New(slog.DiscardHandler)}
	tests := []struct {
		target, variant string
	}{
		{"/kbs/v0/resource/default%2Fkey/db", ProblemPluginInternalError},
		{"/kbs/v0/resource/default/key%2fdb", ProblemPluginInternalError},
		{"/kbs/v0/resource/default%2Fkey%2Fdb", ProblemPluginInternalError},
		{"/kbs/v0/resource/a%2F..%2Fdefault/key/db", ProblemPluginInternalError},
		// Other escapes decode: the path is default/key/db, which needs a
		// token.
		{"/kbs/v0/resource/default/k%65y/db", ProblemTokenNotFound},
		{"/kbs/v0/resource/default/key/db", ProblemTokenNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			checkGetProblem(t, s, tt.target, tt.variant)
		})
	}
}

// A query string that does not parse is rejected before the token is
// read. url.URL.Query would drop the pairs it cannot decode, so the
// resource policy would decide on a query that the request does not carry.
func TestResourceInvalidQuery(t *testing.T) {
	s := &Server{Store: openTestStore(t), Logger: slog.New(slog.DiscardHandler)}
	tests := []struct {
		target, variant string
	}{
		{"/kbs/v0/resource/default/key/db?a=%zz", ProblemPluginInternalError},
		{"/kbs/v0/resource/default/key/db?a=1;b=2", ProblemPluginInternalError},
		{"/kbs/v0/resource/default/key/db?%=1", ProblemPluginInternalError},
		{"/kbs/v0/resource/default/key/db?a=1&b=%20", ProblemTokenNotFound},
		{"/kbs/v0/resource/default/key/db?", ProblemTokenNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			checkGetProblem(t, s, tt.target, tt.variant)
		})
	}
}

// checkGetProblem sends a GET for target to s and checks that the response
// is a 401 problem of the given variant.
func checkGetProblem(t *testing.T, s *Server, target, variant string) {
	t.Helper()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("HTTP %d body %q: %v", w.Code, w.Body, err)
	}
	if p.Variant() != variant {
		t.Errorf("problem = %s, want %s", p.Variant(), variant)
	}
	if w.Code != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", w.Code)
	}
}

// FuzzResourcePath checks that a resource path that passes the grammar
// check is the decoded URL path after /kbs/v0/resource/, so that no
// encoding makes a request name another resource than it spells.
func FuzzResourcePath(f *testing.F) {
	for _, target := range []string{
		"/kbs/v0/resource/default/key/db", "/kbs/v0/resource/default%2Fkey/db", "/kbs/v0/resource/default/k%65y/db",
		"/kbs/v0/resource/a%2F..%2Fdefault/key/db", "/kbs/v0/resource", "/kbs/v0/resource/", "/kbs/v0/re%73ource/a/b/c",
		"/kbs/v0/resource/a%2Fb/c{", "/kbs/v0/resource/a%2Fb/c/d%7B",
	} {
		f.Add(target)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		// ServeHTTP calls resourcePath only for this prefix.
		if err != nil || !strings.HasPrefix(u.Path, "/kbs/v0/resource/") {
			return
		}
		path := resourcePath(u)
		if resourcepath.Check(path) != nil {
			return
		}
		if want := "/kbs/v0/resource/" + path; u.Path != want {
			t.Fatalf("resourcePath(%q) = %q, but the decoded URL path is %q", target, path, u.Path)
		}
		escaped := u.RawPath
		if escaped == "" {
			escaped = u.EscapedPath()
		}
		if n := strings.Count(escaped, "/"); n != 6 {
			t.Fatalf("resourcePath(%q) = %q from an escaped path of %d slashes", target, path, n)
		}
	})
}
