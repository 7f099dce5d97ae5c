package jsonvalue

import (
	"errors"
	"strings"
	"testing"
)

func TestWalkMembers(t *testing.T) {
	tests := []struct {
		name, data, want string // want: part of the error, "" when accepted
	}{
		{"flat", `{"a": 1, "b": [1, {"a": 2}]}`, ""},
		{"same name in siblings", `[{"a": 1}, {"a": 2}]`, ""},
		{"repeated name", `{"a": 1, "a": 2}`, `duplicate member "a"`},
		{"repeated nested name", `{"a": {"b": 1, "b": 2}}`, `duplicate member "b"`},
		{"empty", ``, "EOF"},
		{"short object", `{"a":`, "EOF"},
		{"unclosed array", `[1, 2`, "EOF"},
		{"malformed", `{"a" 1}`, "invalid character"},
		{"too deep", strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2), "nested too deeply"},
	}
	for _, tt := range tests {
		err := WalkMembers([]byte(tt.data), nil)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}

	var dup *DuplicateMemberError
	if err := WalkMembers([]byte(`{"x": 1, "x": 1}`), nil); !errors.As(err, &dup) || dup.Name != "x" {
		t.Errorf("error %v, want a *DuplicateMemberError for x", err)
	}
}

func TestWalkMembersVisit(t *testing.T) {
	var names []string
	if err := WalkMembers([]byte(`{"a": {"b": 1}, "c": [{"d": 2}]}`), func(name string) error {
		names = append(names, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "a,b,c,d" {
		t.Errorf("visited %s, want a,b,c,d", got)
	}

	stop := errors.New("stop")
	if err := WalkMembers([]byte(`{"a": 1, "b": 2}`), func(string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("error %v, want the visitor's", err)
	}
}

// FuzzWalkMembers checks that no input makes WalkMembers panic.
func FuzzWalkMembers(f *testing.F) {
	f.Add([]byte(`{"a": {"b": [1, {"a": 2}]}}`))
	f.Add([]byte(`{"a": 1, "a": 2}`))
	f.Add([]byte(`[[[[[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		WalkMembers(data, func(string) error { return nil })
	})
}
