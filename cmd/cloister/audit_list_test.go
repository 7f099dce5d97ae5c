package main

import (
	"net/http"
	"strings"
	"testing"
)

// Resource requests without a token or with an invalid path show up in
// the audit listing with their outcome and fix.
func TestAuditListShowsDenials(t *testing.T) {
	s := startService(t)
	for _, path := range []string{"default/key/db", "default/key"} {
		resp, err := http.Get(s.url + "/kbs/v0/resource/" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET resource %s: %s, want 401", path, resp.Status)
		}
	}

	runAdminSteps(t, s, []adminStep{
		{name: "ls denials", args: []string{"audit", "ls", "--action", "deny"},
			want: []string{"no_token", "TokenNotFound: the request has no session cookie and no bearer token",
				"invalid_path", `"default/key"`, "has 2 of the 3 segments repository/type/tag"}},
	})
}

func TestColumnCutsLongValues(t *testing.T) {
	long := strings.Repeat("x", 300)
	if got, want := column(long), strings.Repeat("x", maxColumnWidth)+"…"; got != want {
		t.Errorf("column(300 bytes) = %s, want %s", got, want)
	}
	if got := column(""); got != "-" {
		t.Errorf(`column("") = %q, want "-"`, got)
	}
	if got := dash(long); got != long {
		t.Errorf("dash(300 bytes) is %d bytes, want the whole value", len(got))
	}
}

func TestDashQuotesUnprintableColumns(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "-"},
		{"default/key/db", "default/key/db"},
		{"line\nbreak", `"line\nbreak"`},
		{"tab\tcolumn", `"tab\tcolumn"`},
		{"\x1b]0;title\x07", `"\x1b]0;title\a"`},
	}
	for _, tt := range tests {
		got := dash(tt.in)
		if got != tt.want {
			t.Errorf("dash(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if strings.ContainsAny(got, "\n\t\x1b") {
			t.Errorf("dash(%q) = %q contains a control character", tt.in, got)
		}
	}
}
