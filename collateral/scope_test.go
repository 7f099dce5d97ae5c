package collateral

import (
	"slices"
	"testing"
)

func TestForTEE(t *testing.T) {
	item := func(source string, tees ...string) *Item {
		return &Item{Kind: KindJSON, Source: source, Raw: []byte(source), TEEs: tees}
	}
	set := &Set{Ignored: []string{"notes.txt: no collateral"}}
	for _, it := range []*Item{item("any"), item("snp", "snp"), item("dcap", "sgx", "tdx"), item("any2")} {
		set.Add(it)
	}

	tests := []struct {
		tee  string
		want []string
	}{
		{"snp", []string{"any", "snp", "any2"}},
		{"tdx", []string{"any", "dcap", "any2"}},
		{"nitro", []string{"any", "any2"}},
		{"", []string{"any", "any2"}},
	}
	for _, tc := range tests {
		got := set.ForTEE(tc.tee)
		var sources []string
		for _, it := range got.Items {
			sources = append(sources, it.Source)
		}
		if !slices.Equal(sources, tc.want) {
			t.Errorf("ForTEE(%q) = %v, want %v", tc.tee, sources, tc.want)
		}
		if len(got.Ignored) != 1 {
			t.Errorf("ForTEE(%q) dropped the ignored list: %v", tc.tee, got.Ignored)
		}
	}
	if n := len(set.Items); n != 4 {
		t.Errorf("ForTEE changed the set: %d items, want 4", n)
	}

	unscoped := &Set{}
	unscoped.Add(item("any"))
	if unscoped.ForTEE("snp") != unscoped {
		t.Error("ForTEE copied a set whose items all serve the TEE")
	}
	if (*Set)(nil).ForTEE("snp") != nil {
		t.Error("ForTEE of a nil set is not nil")
	}
}
