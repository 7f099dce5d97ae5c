package kbs

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A POST or DELETE on a resource path, Trustee's resource write, gets 401
// AdminAuthInitialization whose detail names the method and the admin
// API, because the KBS handler serves no admin API.
func TestResourceWriteWithoutAdmin(t *testing.T) {
	srv := httptest.NewServer(&Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer srv.Close()

	for _, method := range []string{http.MethodPost, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			req, err := http.NewRequest(method, srv.URL+"/kbs/v0/resource/default/key/db", strings.NewReader("secret"))
			if err != nil {
				t.Fatal(err)
			}
			_, p := doProblem(t, srv, req)
			if p.Status != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", p.Status)
			}
			if p.Variant() != ProblemAdminAuthInitialization {
				t.Errorf("problem type = %q, want %s", p.Type, ProblemAdminAuthInitialization)
			}
			if want := method + " /kbs/v0/resource/default/key/db"; !strings.Contains(p.Detail, want) {
				t.Errorf("detail %q does not name the request %q", p.Detail, want)
			}
			if !strings.Contains(p.Detail, "/admin/v0/secrets/") {
				t.Errorf("detail %q does not name the admin API", p.Detail)
			}
		})
	}
}

// doProblem sends req to srv, reads the whole response and parses its body
// as a problem. It returns the response, whose body is closed, for its
// headers.
func doProblem(t *testing.T, srv *httptest.Server, req *http.Request) (*http.Response, *Problem) {
	t.Helper()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	p, err := ParseProblem(resp.StatusCode, raw)
	if err != nil {
		t.Fatal(err)
	}
	return resp, p
}
