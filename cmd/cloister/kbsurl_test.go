package main

import (
	"strings"
	"testing"
)

func TestCheckKBSURL(t *testing.T) {
	tests := []struct {
		url       string
		allowHTTP bool
		want      string // "" when accepted
	}{
		{"https://kbs.example:8080", false, ""},
		{"http://127.0.0.1:8080", false, ""},
		{"http://[::1]:8080", false, ""},
		{"http://10.0.0.5:8080", false, "can impersonate the key broker"},
		{"http://localhost:8080", false, "--kbs-allow-http"},
		{"http://kbs.example:8080", true, ""},
		{"ftp://kbs.example", false, "invalid --kbs"},
		{"127.0.0.1:8080", false, "invalid --kbs"},
	}
	for _, tt := range tests {
		err := checkKBSURL(tt.url, tt.allowHTTP)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("checkKBSURL(%q, %v) = %v, want nil", tt.url, tt.allowHTTP, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("checkKBSURL(%q, %v) = %v, want an error containing %q", tt.url, tt.allowHTTP, err, tt.want)
		}
	}
}
