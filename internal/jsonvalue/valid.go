package jsonvalue

import (
	"bytes"
	"encoding/binary"
)

// maxNestingDepth is the deepest nesting of objects and arrays that Valid
// accepts, the limit of encoding/json's scanner in Go 1.26.
const maxNestingDepth = 10000

// Valid reports whether data is one JSON value with optional space around
// it, as json.Valid does, including its nesting limit. Like json.Valid it
// accepts invalid UTF-8 inside strings.
//
// It exists because json.Valid calls a state function for each byte, which
// is slow on the long base64 strings of attestation evidence. Valid checks
// the bytes of a string eight at a time.
func Valid(data []byte) bool {
	// open holds the kinds ('{' or '[') of the objects and arrays that
	// enclose the current position.
	var openBuffer [32]byte
	open := openBuffer[:0]

	i := skipSpace(data, 0)
	for {
		// A value starts at i.
		if i >= len(data) {
			return false
		}
		switch c := data[i]; {
		case c == '{' || c == '[':
			if len(open) == maxNestingDepth {
				return false
			}
			i = skipSpace(data, i+1)
			if i < len(data) && data[i] == closing(c) {
				i++
				break
			}
			open = append(open, c)
			if c == '{' {
				var ok bool
				if i, ok = validMemberName(data, i); !ok {
					return false
				}
			}
			continue
		case c == '"':
			var ok bool
			if i, ok = validStringEnd(data, i); !ok {
				return false
			}
		case c == '-' || isDigit(c):
			var ok bool
			if i, ok = validNumberEnd(data, i); !ok {
				return false
			}
		case c == 't':
			if !bytes.HasPrefix(data[i:], []byte("true")) {
				return false
			}
			i += len("true")
		case c == 'f':
			if !bytes.HasPrefix(data[i:], []byte("false")) {
				return false
			}
			i += len("false")
		case c == 'n':
			if !bytes.HasPrefix(data[i:], []byte("null")) {
				return false
			}
			i += len("null")
		default:
			return false
		}

		// A value ends at i: close the objects and arrays that end here,
		// and go on with the next member or element.
		for {
			i = skipSpace(data, i)
			if len(open) == 0 {
				return i == len(data)
			}
			if i >= len(data) {
				return false
			}
			kind := open[len(open)-1]
			if data[i] == closing(kind) {
				open = open[:len(open)-1]
				i++
				continue
			}
			if data[i] != ',' {
				return false
			}
			i = skipSpace(data, i+1)
			if kind == '{' {
				var ok bool
				if i, ok = validMemberName(data, i); !ok {
					return false
				}
			}
			break
		}
	}
}

// closing returns the byte that closes an object or array opened with c.
func closing(c byte) byte {
	if c == '{' {
		return '}'
	}
	return ']'
}

// validMemberName checks the member name and colon at data[i:] and returns
// the index of the member's value after any space.
func validMemberName(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	i, ok := validStringEnd(data, i)
	if !ok {
		return 0, false
	}
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return 0, false
	}
	return skipSpace(data, i+1), true
}

// validStringEnd checks the JSON string that starts with the quote at
// data[i] and returns the index just past it.
func validStringEnd(data []byte, i int) (int, bool) {
	i++
	for {
		// Skip eight bytes at a time while none needs a closer look.
		for i+8 <= len(data) && !hasSpecialByte(binary.LittleEndian.Uint64(data[i:])) {
			i += 8
		}
		if i >= len(data) {
			return 0, false
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			// JSON strings must escape control characters.
			return 0, false
		case c != '\\':
			i++
			continue
		}

		// An escape: \" \\ \/ \b \f \n \r \t or \u and four hex digits.
		if i+1 >= len(data) {
			return 0, false
		}
		switch data[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(data) {
				return 0, false
			}
			for _, h := range data[i+2 : i+6] {
				if !isHexDigit(h) {
					return 0, false
				}
			}
			i += 6
		default:
			return 0, false
		}
	}
}

// hasSpecialByte reports whether one of the eight bytes in w is a quote, a
// backslash or a control byte (below 0x20). It uses the bit trick that
// finds a zero byte in a word: (x - 0x01…01) & ^x & 0x80…80 is not zero
// exactly when some byte of x is zero. With 0x20…20 in place of 0x01…01,
// it is not zero exactly when some byte is below 0x20.
func hasSpecialByte(w uint64) bool {
	const ones = 0x0101010101010101
	const highBits = 0x8080808080808080
	quote := w ^ (ones * '"')
	backslash := w ^ (ones * '\\')
	control := (w - ones*0x20) & ^w
	return (control|(quote-ones)&^quote|(backslash-ones)&^backslash)&highBits != 0
}

// validNumberEnd checks the JSON number that starts at data[i] and returns
// the index just past it: an optional minus, 0 or digits without a leading
// zero, an optional fraction and an optional exponent.
func validNumberEnd(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && isDigit(data[i]):
		i = digitsEnd(data, i)
	default:
		return 0, false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			return 0, false
		}
		i = digitsEnd(data, i)
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return 0, false
		}
		i = digitsEnd(data, i)
	}
	return i, true
}

func digitsEnd(data []byte, i int) int {
	for i < len(data) && isDigit(data[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
