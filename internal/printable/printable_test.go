package printable

import (
	"strings"
	"testing"
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
		{"at the limit", "abc", 3, "abc"},
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
	}
	for _, tt := range tests {
		if got := Quote(tt.in, tt.limit); got != tt.want {
			t.Errorf("%s: Quote(%q, %d) = %s, want %s", tt.name, tt.in, tt.limit, got, tt.want)
		}
	}
}

func FuzzText(f *testing.F) {
	f.Add("default/key/db", 0)
	f.Add("a\nb\x1b[0m\xff", 5)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		if limit < 0 || limit > 1<<16 {
			t.Skip()
		}
		got := Text(s, limit)
		for _, r := range got {
			if r == '\n' || r == '\r' || r == '\t' || r == 0x1b || r == '\uFFFD' && !strings.ContainsRune(s, '\uFFFD') {
				t.Fatalf("Text(%q, %d) = %q contains a character that is not printable", s, limit, got)
			}
		}
	})
}
