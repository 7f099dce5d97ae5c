package jsonvalue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxDepth is the deepest nesting of objects and arrays that WalkMembers
// accepts.
const MaxDepth = 64

// DuplicateMemberError reports an object that repeats a member name.
// encoding/json keeps the last of repeated names, and other JSON readers
// may keep the first, so such a document means different things to them.
type DuplicateMemberError struct {
	Name string
}

func (e *DuplicateMemberError) Error() string { return fmt.Sprintf("duplicate member %q", e.Name) }

// WalkMembers walks the first JSON value of data and fails with a
// *DuplicateMemberError on an object that repeats a member name, and on
// nesting deeper than MaxDepth. When visit is not nil, it is called with
// every member name, and its error stops the walk.
func WalkMembers(data []byte, visit func(name string) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > MaxDepth {
			return errors.New("JSON nested too deeply")
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				name, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := name.(string)
				if seen[key] {
					return &DuplicateMemberError{Name: key}
				}
				seen[key] = true
				if visit != nil {
					if err := visit(key); err != nil {
						return err
					}
				}
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk(0)
}
