package admin

import (
	"strings"
	"testing"
)

func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{"Bearer abc", "bearer  abc ", "Basic abc", "Bearer", "Bearer ", "", " Bearer x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, ok := bearerToken(header)
		if !ok {
			return
		}
		if token == "" || token != strings.TrimSpace(token) {
			t.Fatalf("bearerToken(%q) = %q, want a non-empty token without surrounding space", header, token)
		}
		if !strings.Contains(header, token) {
			t.Fatalf("bearerToken(%q) = %q, not part of the header", header, token)
		}
	})
}
