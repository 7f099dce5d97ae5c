package resourcepath

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		path string
		want string // empty: accepted
	}{
		{"default/key/db", ""},
		{"my-repo/cert_chain/v1.2", ""},
		{"models/xor/key.v2", ""},
		{"default/cleanroom/result-key", ""},
		{"", "1 of the 3 segments"},
		{"a/b", "2 of the 3 segments"},
		{"a/b/c/d", "4 of the 3 segments"},
		{"a//c", `segment ""`},
		{"a/../c", `segment ".."`},
		{"a/./c", `segment "."`},
		{"default/.key/db", `segment ".key"`},
		{"default/key/..x", `segment "..x"`},
		{"a/b/c d", `segment "c d"`},
		{"a/b/ü", `segment "ü"`},
		{"default/key/db#frag", `segment "db#frag"`},
		{"default/key/db?x=1", `segment "db?x=1"`},
		{"default/key/%2e%2e", `segment "%2e%2e"`},
	}
	for _, tt := range tests {
		err := Check(tt.path)
		if tt.want == "" {
			if err != nil {
				t.Errorf("Check(%q) = %v, want nil", tt.path, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check(%q) = %v, want an error containing %q", tt.path, err, tt.want)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, seed := range []string{"default/key/db", "a/b", "a/../c", "default/.key/db", "", "/", "a/b/c/", "ü/b/c"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if Check(path) != nil {
			return
		}
		segments := strings.Split(path, "/")
		if len(segments) != 3 {
			t.Fatalf("accepted %q with %d segments", path, len(segments))
		}
		for _, s := range segments {
			if s == "" || strings.HasPrefix(s, ".") || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != "" {
				t.Fatalf("accepted %q with segment %q", path, s)
			}
		}
	})
}
