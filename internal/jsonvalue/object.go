package jsonvalue

import (
	"bytes"
	"encoding/json"
	"errors"
	"iter"
	"slices"
	"strings"
	"unicode/utf8"
)

// Policies and the key broker read a few members of large JSON claim
// sets: verified claims, and the claim set of an attestation token.
// Decoding all of it into maps costs more than the rest of a decision that
// is reused. So Object records where each member of an object lies in the
// text, and only the members a caller needs are decoded.
//
// encoding/json has no API for this. A json.RawMessage per member copies
// every value, and json.Decoder.Token allocates per token. The scanner
// below runs only on valid JSON (checked by json.Valid or written by
// json.Marshal), so it finds where strings, objects and arrays end without
// checking their syntax.

// Object is a JSON object text with the position of each member.
type Object struct {
	text    []byte
	members []jsonMember
}

// membersCapacity is the capacity first given to a member index, enough
// for the members of verified claims.
const membersCapacity = 32

// jsonMember is one member of a JSON object: its name as written between
// the quotes and its value's JSON text.
type jsonMember struct {
	name  []byte
	value []byte
	// plain is set when name has no escape and is ASCII, so that it is
	// the decoded name.
	plain bool
}

// ParseObject checks that data is exactly one JSON object, as DecodeObject
// requires, and indexes its members. The error for other data is
// DecodeObject's.
func ParseObject(data []byte) (*Object, error) {
	start := skipSpace(data, 0)
	if !json.Valid(data) || start >= len(data) || data[start] != '{' {
		if _, err := DecodeObject(data); err != nil {
			return nil, err
		}
		return nil, errors.New("not a JSON object")
	}
	return newObject(data[start:skipSpaceBack(data, len(data))]), nil
}

// ParseEncodedObject is ParseObject for data known to be valid JSON, such
// as the output of json.Marshal, so only the check that it is an object
// remains.
func ParseEncodedObject(data []byte) (*Object, error) {
	start := skipSpace(data, 0)
	if start >= len(data) || data[start] != '{' {
		// Nil claims encode as null.
		return ParseObject(data)
	}
	return newObject(data[start:skipSpaceBack(data, len(data))]), nil
}

// newObject indexes the members of text, a valid JSON object without
// surrounding space.
func newObject(text []byte) *Object {
	return &Object{text: text, members: objectMembers(text, make([]jsonMember, 0, membersCapacity))}
}

// Text returns the object's JSON text, without surrounding space. It is
// the text o was made from, so the caller must not change it.
func (o *Object) Text() []byte { return o.text }

// Get returns the value text of the member name. With duplicate names the
// last one counts, as it does when encoding/json decodes the object.
func (o *Object) Get(name string) ([]byte, bool) {
	if m := lastMember(o.members, name); m != nil {
		return m.value, true
	}
	return nil, false
}

// All returns the value texts of the members of o named name, in their
// order. Decoding them in turn into one Go value gives what encoding/json
// gives, because encoding/json decodes a repeated member each time it
// occurs.
func (o *Object) All(name string) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for i := range o.members {
			if o.members[i].is(name) && !yield(o.members[i].value) {
				return
			}
		}
	}
}

// AllFold returns the value texts of the members of o whose names equal
// name under Unicode case folding (strings.EqualFold), in their order. This
// is how encoding/json matches members to the fields of a struct that has
// no two field names equal under case folding.
func (o *Object) AllFold(name string) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for i := range o.members {
			if o.members[i].isFold(name) && !yield(o.members[i].value) {
				return
			}
		}
	}
}

// DecodeMembers decodes the members of o that names lists into a map, as
// DecodeObject decodes the whole object. Names that o does not have are
// left out.
func (o *Object) DecodeMembers(names []string) (map[string]any, error) {
	text := make([]byte, 0, 512)
	text = append(text, '{')
	var added []string
	for _, name := range names {
		m := lastMember(o.members, name)
		if m == nil || slices.Contains(added, name) {
			continue
		}
		if len(added) > 0 {
			text = append(text, ',')
		}
		added = append(added, name)
		// The name as written decodes to name, so the object below has
		// the members of o that names lists.
		text = append(text, '"')
		text = append(text, m.name...)
		text = append(text, '"', ':')
		text = append(text, m.value...)
	}
	text = append(text, '}')
	return DecodeObject(text)
}

// Without returns the text of o without the members whose names decode to
// one of names: its other members as written, in their order, with no
// space between them. For the output of json.Marshal this is the encoding
// of the same value without those members.
func (o *Object) Without(names ...string) []byte {
	text := make([]byte, 0, len(o.text))
	text = append(text, '{')
	for i := range o.members {
		m := &o.members[i]
		if slices.ContainsFunc(names, func(name string) bool { return m.is(name) }) {
			continue
		}
		if len(text) > 1 {
			text = append(text, ',')
		}
		text = append(text, '"')
		text = append(text, m.name...)
		text = append(text, '"', ':')
		text = append(text, m.value...)
	}
	return append(text, '}')
}

// lastMember returns the last of members whose name decodes to name, or
// nil.
func lastMember(members []jsonMember, name string) *jsonMember {
	for i := len(members) - 1; i >= 0; i-- {
		if members[i].is(name) {
			return &members[i]
		}
	}
	return nil
}

// is reports whether m's name decodes to name.
func (m *jsonMember) is(name string) bool {
	if m.plain {
		return string(m.name) == name
	}
	return nameEquals(m.name, name)
}

// isFold reports whether m's name decodes to a string equal to name under
// Unicode case folding.
func (m *jsonMember) isFold(name string) bool {
	if m.plain {
		return bytes.EqualFold(m.name, []byte(name))
	}
	decoded, ok := decodeName(m.name)
	return ok && strings.EqualFold(decoded, name)
}

// Lookup returns the value text at path below o, with the rules of the
// function Lookup: a missing member, or a value on the way that is not an
// object, gives false, and the empty path gives o itself.
func (o *Object) Lookup(path []string) ([]byte, bool) {
	if len(path) == 0 {
		return o.text, true
	}
	v, ok := o.Get(path[0])
	for _, name := range path[1:] {
		if !ok {
			return nil, false
		}
		v, ok = memberValue(v, name)
	}
	return v, ok
}

// objectMembers appends the members of the JSON object text obj to
// members. obj must be valid JSON without surrounding space. Anything but
// an object has no members.
func objectMembers(obj []byte, members []jsonMember) []jsonMember {
	if len(obj) == 0 || obj[0] != '{' {
		return members
	}
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		nameEnd := stringEnd(obj, i)
		name := obj[i+1 : max(nameEnd-1, i+1)]

		i = skipSpace(obj, nameEnd)
		if i >= len(obj) || obj[i] != ':' {
			return members
		}
		i = skipSpace(obj, i+1)
		end := valueEnd(obj, i)
		members = append(members, jsonMember{name: name, value: obj[i:end], plain: isPlainName(name)})

		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ',' {
			return members
		}
		i = skipSpace(obj, i+1)
	}
	return members
}

// memberValue returns the value text of the last member name of the JSON
// object text obj, or false when obj is not an object or has no such
// member.
func memberValue(obj []byte, name string) ([]byte, bool) {
	var buf [16]jsonMember
	if m := lastMember(objectMembers(obj, buf[:0]), name); m != nil {
		return m.value, true
	}
	return nil, false
}

// isPlainName reports whether the member name written as raw (without the
// quotes) has no escape and only ASCII characters, so that it decodes to
// itself.
func isPlainName(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// nameEquals reports whether the member name written as raw (without the
// quotes) decodes to name. encoding/json replaces invalid UTF-8 with
// U+FFFD, so raw is decoded as it would.
func nameEquals(raw []byte, name string) bool {
	decoded, ok := decodeName(raw)
	return ok && decoded == name
}

// decodeName decodes the member name written as raw (without the quotes)
// as encoding/json does.
func decodeName(raw []byte) (string, bool) {
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var decoded string
	if err := json.Unmarshal(quoted, &decoded); err != nil {
		return "", false
	}
	return decoded, true
}

// valueEnd returns the index just past the JSON value that starts at
// data[i].
func valueEnd(data []byte, i int) int {
	if i >= len(data) {
		return len(data)
	}
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = stringEnd(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	default:
		// A number, true, false or null runs to the next delimiter.
		j := i
		for j < len(data) && !isDelimiter(data[j]) {
			j++
		}
		return j
	}
}

// stringEnd returns the index just past the JSON string that starts with
// the quote at data[i]. It looks for quotes with bytes.IndexByte, which is
// much faster than a loop over each byte of a long base64 string. In a
// valid string, a run of 2k backslashes is k escaped backslashes, so a
// quote is escaped exactly when an odd number of backslashes precede it.
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); {
		n := bytes.IndexByte(data[j:], '"')
		if n < 0 {
			return len(data)
		}
		quote := j + n
		run := quote
		for run > i+1 && data[run-1] == '\\' {
			run--
		}
		if (quote-run)%2 == 0 {
			return quote + 1
		}
		j = quote + 1
	}
	return len(data)
}

func isDelimiter(c byte) bool {
	return c == ',' || c == '}' || c == ']' || isSpace(c)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

func skipSpaceBack(data []byte, end int) int {
	for end > 0 && isSpace(data[end-1]) {
		end--
	}
	return end
}
