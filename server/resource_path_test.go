package server

import (
	"io"
	"net/http"
	"testing"

	"github.com/cloister-dev/cloister/kbs"
)

// A resource path that is not in the grammar repository/type/tag, with
// each segment of letters, digits, '_', '-' and '.', gets Trustee's 401
// PluginInternalError. The service neither redirects it to a cleaned path
// nor reads an encoded slash as a segment separator, so a request never
// names another resource than the one its path spells.
func TestResourcePathNotRewritten(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	_, token := ts.attestClient(t, "good")
	noRedirect := &http.Client{
		Transport:     ts.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	paths := []string{
		"/kbs/v0/resource/default//db",
		"/kbs/v0/resource/default/key//db",
		"/kbs/v0/resource/x/../default/key/db",
		"/kbs/v0/resource/default/key/./db",
		"/kbs/v0/resource/default/x/../key/db",
		"/kbs/v0/resource/default%2Fkey/db",
		"/kbs/v0/resource/default/key%2fdb",
		"/kbs/v0/resource/default/key/db%2F",
	}

	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()

			if loc := resp.Header.Get("Location"); loc != "" {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("%s redirected to %s: %s", resp.Status, loc, body)
			}
			wantProblemResponse(t, resp, kbs.ProblemPluginInternalError, http.StatusUnauthorized)
		})
	}

	// The same token reads the secret at its plain path.
	resp := get(t, ts, "/kbs/v0/resource/"+testSecretPath, token)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("plain path: %s", resp.Status)
	}
}

// A request to /kbs/v0 without the trailing slash gets a KBS error body,
// which guests parse, not a redirect.
func TestKBSPrefixWithoutSlash(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	noRedirect := &http.Client{
		Transport:     ts.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := noRedirect.Get(ts.URL + "/kbs/v0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	wantProblemResponse(t, resp, kbs.ProblemInvalidRequestPath, http.StatusNotFound)
}
