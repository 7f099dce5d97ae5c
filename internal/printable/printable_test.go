package printable

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{"plain", "default/key/db", 0, "default/key/db"},
		{"unicode", "clé/ü", 0, "clé/ü"},
		{"newline", "a\nb", 0, `"a\nb"`},
		{"tab", "a\tb", 0, `"a\tb"`},
		{"terminal escape", "\x1b[31mred", 0, `"\x1b[31mred"`},
		{"invalid utf-8", "a\xffb", 0, `"a\xffb"`},
		{"cut", "abcdef", 3, "abc…"},
		{"cut inside a rune", "aé", 2, "a…"},
		{"cut and quoted", "a\nbcdef", 3, `"a\nb"…`},
		{"cut keeps invalid bytes", "\xff\xfeabc", 3, `"\xff\xfea"…`},
		{"at the limit", "abc", 3, "abc"},
		{"negative limit", "abc", -1, "abc"},
	}
	for _, tt := range tests {
		if got := Text(tt.in, tt.limit); got != tt.want {
			t.Errorf("%s: Text(%q, %d) = %s, want %s", tt.name, tt.in, tt.limit, got, tt.want)
		}
	}
}

func TestQuote(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{"short", "a/b", 10, `"a/b"`},
		{"control character", "a\x00", 10, `"a\x00"`},
		{"at the limit", "abcd", 4, `"abcd"`},
		{"long", "abcdefgh", 4, `"abcd"... (8 bytes)`},
		{"cut inside a rune", "abcé", 4, `"abc"... (5 bytes)`},
		{"no limit", "abcdefgh", 0, `"abcdefgh"`},
		{"negative limit", "abcdefgh", -1, `"abcdefgh"`},
	}
	for _, tt := range tests {
		if got := Quote(tt.in, tt.limit); got != tt.want {
			t.Errorf("%s: Quote(%q, %d) = %s, want %s", tt.name, tt.in, tt.limit, got, tt.want)
		}
	}
}

func FuzzText(f *testing.F) {
	f.Add("default/key/db", 0)
	f.Add("a\nb\x1b[0m\xff\u009b\x7f", 5)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		got := Text(s, limit)
		if !utf8.ValidString(got) {
			t.Fatalf("Text(%q, %d) = %q is not valid UTF-8", s, limit, got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Fatalf("Text(%q, %d) = %q contains %U, which is not printable", s, limit, got, r)
			}
		}
		if limit > 0 && len(s) > limit && !strings.HasSuffix(got, "…") {
			t.Fatalf("Text(%q, %d) = %q does not mark the cut", s, limit, got)
		}
	})
}

func FuzzQuote(f *testing.F) {
	f.Add("default/key/db", 0)
	f.Add("a\nb\x1b[0m\xff\u009b\x7fé", 5)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		got := Quote(s, limit)
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Fatalf("Quote(%q, %d) = %q contains %U, which is not printable", s, limit, got, r)
			}
		}
		// strconv.Quote writes at most 4 bytes per input byte (\xff).
		if limit > 0 && len(got) > 4*limit+40 {
			t.Fatalf("Quote(%q, %d) is %d bytes, more than the cut allows", s, limit, len(got))
		}
	})
}

// A limit below a character's length drops the character whole.
func TestCutAtRuneSmallLimit(t *testing.T) {
	if got := cutAtRune("é…", 1); got != "" {
		t.Errorf("cutAtRune(%q, 1) = %q, want the empty string", "é…", got)
	}
}
