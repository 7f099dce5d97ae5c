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

func TestCellCutsLongValues(t *testing.T) {
	long := strings.Repeat("x", 300)
	if got, want := cell(long, maxColumnWidth), strings.Repeat("x", maxColumnWidth)+"…"; got != want {
		t.Errorf("cell(300 bytes, %d) = %s, want %s", maxColumnWidth, got, want)
	}
	if got := cell("", maxColumnWidth); got != "-" {
		t.Errorf(`cell("", %d) = %q, want "-"`, maxColumnWidth, got)
	}
	if got := cell(long, 0); got != long {
		t.Errorf("cell(300 bytes, 0) is %d bytes, want the whole value", len(got))
	}
}

func TestCellQuotesUnprintableText(t *testing.T) {
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
		got := cell(tt.in, 0)
		if got != tt.want {
			t.Errorf("cell(%q, 0) = %s, want %s", tt.in, got, tt.want)
		}
		if strings.ContainsAny(got, "\n\t\x1b") {
			t.Errorf("cell(%q, 0) = %q contains a control character", tt.in, got)
		}
	}
}
