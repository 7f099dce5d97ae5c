// Package printable makes text from the network or from stored records
// safe to print: control characters, terminal escapes and invalid UTF-8
// are escaped, and long values are cut.
package printable

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Text returns s unchanged when it is valid UTF-8 and every character is
// printable, and quoted with strconv.Quote otherwise, such as when it
// contains a newline, a tab or a terminal escape. With limit > 0, s is cut
// to at most limit bytes first, before a character that the cut would
// split, and "…" marks the cut.
func Text(s string, limit int) string {
	cut := false
	if limit > 0 && len(s) > limit {
		s, cut = cutAtRune(s, limit), true
	}
	if !isPrintable(s) {
		s = strconv.Quote(s)
	}
	if cut {
		s += "…"
	}
	return s
}

// Quote returns s quoted with strconv.Quote. With limit > 0, a value
// longer than limit bytes is cut to at most limit bytes, before a
// character that the cut would split, and followed by its length.
func Quote(s string, limit int) string {
	if limit <= 0 || len(s) <= limit {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q... (%d bytes)", cutAtRune(s, limit), len(s))
}

// cutAtRune returns s cut to at most limit bytes, where limit < len(s). The
// cut moves back to the start of a UTF-8 sequence that it would split, so
// that a valid character is dropped whole rather than left as invalid bytes.
func cutAtRune(s string, limit int) string {
	for end := limit; end >= 0 && end > limit-utf8.UTFMax; end-- {
		if utf8.RuneStart(s[end]) {
			return s[:end]
		}
	}
	return s[:limit]
}

func isPrintable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
