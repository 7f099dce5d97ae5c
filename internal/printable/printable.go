// Package printable makes text from the network or from stored records
// safe to print: control characters, terminal escapes and invalid UTF-8
// are escaped, and long values are cut.
package printable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text returns s unchanged when it is valid UTF-8 and every character is
// printable, and quoted with strconv.Quote otherwise, such as when it
// contains a newline, a tab or a terminal escape. With limit > 0, s is cut
// to limit bytes first and "…" marks the cut.
func Text(s string, limit int) string {
	cut := false
	if limit > 0 && len(s) > limit {
		s, cut = strings.ToValidUTF8(s[:limit], ""), true
	}
	if !isPrintable(s) {
		s = strconv.Quote(s)
	}
	if cut {
		s += "…"
	}
	return s
}

// Quote returns s quoted with strconv.Quote. A value longer than limit
// bytes is cut to limit bytes and followed by its length.
func Quote(s string, limit int) string {
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:limit], len(s))
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
