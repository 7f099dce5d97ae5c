package agent

import (
	"path"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/internal/resourcepath"
)

// secretSeeds are --secret and --secret-env values, valid and invalid.
var secretSeeds = []string{
	"default/key/db",
	"default/key/db=db.pem",
	"default/cert/tls.crt=server.crt",
	"DB_KEY=default/key/db",
	"TOKEN=default/api/token",
	"default/key",
	"default/key/db/extra",
	"/key/db",
	"default/key/db=../x",
	"default/key/db=",
	"default/key/..",
	"default/key/db?version=2",
	"default/key/db#frag",
	"default/key/a b",
	"default/key/%2e%2e",
	"=default/key/db",
	"A=B=default/key/db",
	"X\x00=default/key/db",
	"",
}

func FuzzParseSecret(f *testing.F) {
	for _, seed := range secretSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sec, err := ParseSecret(s)
		if err != nil {
			if sec != (Secret{}) {
				t.Errorf("ParseSecret(%q) returned %+v with the error %v", s, sec, err)
			}
			return
		}

		if err := resourcepath.Check(sec.Path); err != nil {
			t.Fatalf("ParseSecret(%q) accepted a path the KBS cannot serve: %v", s, err)
		}
		if err := ValidSecretName(sec.File); err != nil {
			t.Fatalf("ParseSecret(%q) accepted the file name %q: %v", s, sec.File, err)
		}
		if sec.Env != "" {
			t.Fatalf("ParseSecret(%q) set Env to %q, want none", s, sec.Env)
		}

		// The value is PATH or PATH=, naming the file after the tag, or
		// PATH=FILE.
		switch s {
		case sec.Path, sec.Path + "=":
			if sec.File != path.Base(sec.Path) {
				t.Fatalf("ParseSecret(%q) named the file %q, want the tag %q", s, sec.File, path.Base(sec.Path))
			}
		case sec.Path + "=" + sec.File:
		default:
			t.Fatalf("ParseSecret(%q) = %+v, which is neither PATH nor PATH=FILE of the input", s, sec)
		}
		again, err := ParseSecret(sec.Path + "=" + sec.File)
		if err != nil || again != sec {
			t.Fatalf("ParseSecret(%q) = %+v, but its PATH=FILE form parses as %+v, %v", s, sec, again, err)
		}
	})
}

func FuzzParseSecretEnv(f *testing.F) {
	for _, seed := range secretSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sec, err := ParseSecretEnv(s)
		if err != nil {
			if sec != (Secret{}) {
				t.Errorf("ParseSecretEnv(%q) returned %+v with the error %v", s, sec, err)
			}
			return
		}

		if err := resourcepath.Check(sec.Path); err != nil {
			t.Fatalf("ParseSecretEnv(%q) accepted a path the KBS cannot serve: %v", s, err)
		}
		if sec.Env == "" || strings.ContainsAny(sec.Env, "=\x00") {
			t.Fatalf("ParseSecretEnv(%q) set Env to %q, want a non-empty name without '=' or NUL", s, sec.Env)
		}
		if sec.File != "" {
			t.Fatalf("ParseSecretEnv(%q) set File to %q, want none", s, sec.File)
		}
		if s != sec.Env+"="+sec.Path {
			t.Fatalf("ParseSecretEnv(%q) = %+v, which is not VAR=PATH of the input", s, sec)
		}
	})
}

func TestParseSecretPathCharacters(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"default/key/db", true},
		{"my-repo/key_type/db-1.pem", true},
		{"default/key/db?version=2", false},
		{"default/key/db#frag", false},
		{"default/key/a b", false},
		{"default/key/%2e%2e", false},
		{"default/key/..=db", false},
		{"default/./db=db", false},
		{"default/.key/db", false},
		{"default/key/db\n", false},
	}
	for _, tt := range tests {
		_, err := ParseSecret(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSecret(%q) error = %v, want ok %v", tt.in, err, tt.ok)
		}
		_, err = ParseSecretEnv("VAR=" + tt.in)
		if (err == nil) != tt.ok && !strings.Contains(tt.in, "=") {
			t.Errorf("ParseSecretEnv(%q) error = %v, want ok %v", "VAR="+tt.in, err, tt.ok)
		}
	}
	if _, err := ParseSecretEnv("A=B=default/key/db"); err == nil {
		t.Error(`ParseSecretEnv("A=B=default/key/db") accepted the path "B=default/key/db"`)
	}
}
