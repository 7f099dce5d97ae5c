package jsonpath

import "testing"

func TestLookup(t *testing.T) {
	doc := map[string]any{
		"a":    map[string]any{"b": map[string]any{"c": "deep"}, "null": nil},
		"list": []any{map[string]any{"x": 1}},
		"text": "leaf",
	}
	tests := []struct {
		name  string
		path  []string
		want  any
		found bool
	}{
		{"empty path", nil, nil, true},
		{"top member", []string{"text"}, "leaf", true},
		{"nested member", []string{"a", "b", "c"}, "deep", true},
		{"null member", []string{"a", "null"}, nil, true},
		{"missing member", []string{"a", "missing"}, nil, false},
		{"through a string", []string{"text", "x"}, nil, false},
		{"through an array", []string{"list", "0"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := Lookup(doc, tt.path...)
			if found != tt.found {
				t.Fatalf("found = %v, want %v", found, tt.found)
			}
			if tt.path == nil {
				return
			}
			if got != tt.want {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
		})
	}
}
