// Package resourcepath is the syntax of a KBS resource path,
// "<repository>/<type>/<tag>". The key broker that serves a secret, the
// store that keeps it, and the agent and workloads that request it all
// apply this one rule, so that none of them accepts a path another rejects.
package resourcepath

import (
	"fmt"
	"strings"

	"github.com/cloister-dev/cloister/internal/printable"
)

// MaxQuoted is the number of bytes of a path or segment that an error of
// Check quotes. Paths come from clients and can be hundreds of KB long, so
// that a whole path would bury the fix at the end of the message.
const MaxQuoted = 256

// Check returns nil when path is three segments, each of ASCII letters,
// digits, '_', '-' and '.' and not starting with '.', which also excludes
// "." and "..". The rule keeps a path safe in URLs and file names. The
// error names the path and the segment at fault, quoted and cut to
// MaxQuoted bytes.
func Check(path string) error {
	segments := strings.Split(path, "/")
	if len(segments) != 3 {
		return fmt.Errorf("resource path %s has %d of the 3 segments repository/type/tag; use a path such as default/key/db",
			printable.Quote(path, MaxQuoted), len(segments))
	}
	for _, s := range segments {
		if !validSegment(s) {
			return fmt.Errorf("resource path %s: segment %s must be letters, digits, '_', '-' and '.', and not start with '.'",
				printable.Quote(path, MaxQuoted), printable.Quote(s, MaxQuoted))
		}
	}
	return nil
}

func validSegment(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}
