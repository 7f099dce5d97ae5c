package appraise

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// minTCBValue parses a minimum TCB value as the grammar of ParseMinTCB
// documents it: decimal, or hexadecimal after 0x or 0X.
func minTCBValue(s string) (uint64, error) {
	if hex, ok := strings.CutPrefix(s, "0x"); ok {
		return strconv.ParseUint(hex, 16, 64)
	}
	if hex, ok := strings.CutPrefix(s, "0X"); ok {
		return strconv.ParseUint(hex, 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

// formatMinTCB writes m in the syntax ParseMinTCB reads, names sorted.
func formatMinTCB(m map[string]uint64) string {
	pairs := make([]string, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		pairs = append(pairs, fmt.Sprintf("%s=%d", name, m[name]))
	}
	return strings.Join(pairs, ",")
}

func FuzzParseMinTCB(f *testing.F) {
	for _, seed := range []string{
		"",
		"bootloader=4,tee=0,snp=22,microcode=213",
		"bootloader=0x04, snp=0x16",
		"fmspc_svn=7",
		" snp = 22 ",
		"snp=18446744073709551615",
		"snp=18446744073709551616",
		"snp=010",
		"snp=1_000",
		"snp=0b101",
		"snp=22,snp=3",
		"snp",
		"=4",
		"snp=-1",
		"snp=22,",
		",",
		"snp=0x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseMinTCB(s)
		if err != nil {
			if got != nil {
				t.Errorf("ParseMinTCB(%q) returned %v with the error %v", s, got, err)
			}
			return
		}

		// Every entry comes from one name=value pair of the input, and its
		// value is the documented reading of that pair.
		want := map[string]uint64{}
		if strings.TrimSpace(s) != "" {
			for _, part := range strings.Split(s, ",") {
				name, value, ok := strings.Cut(part, "=")
				if !ok {
					t.Fatalf("ParseMinTCB(%q) accepted %q, which has no '='", s, part)
				}
				if _, dup := want[strings.TrimSpace(name)]; dup {
					t.Fatalf("ParseMinTCB(%q) accepted %q twice", s, strings.TrimSpace(name))
				}
				v, err := minTCBValue(strings.TrimSpace(value))
				if err != nil {
					t.Fatalf("ParseMinTCB(%q) accepted the value %q, which is neither decimal nor 0x hexadecimal: %v", s, value, err)
				}
				want[strings.TrimSpace(name)] = v
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("ParseMinTCB(%q) = %v, want %v", s, got, want)
		}
		for name := range got {
			if name == "" || name != strings.TrimSpace(name) || strings.ContainsAny(name, ",=") {
				t.Fatalf("ParseMinTCB(%q) returned the name %q, want a non-empty name without surrounding space, ',' or '='", s, name)
			}
		}

		// The result reads back the same in the flag's syntax.
		again, err := ParseMinTCB(formatMinTCB(got))
		if err != nil {
			t.Fatalf("ParseMinTCB(%q) = %v, which does not parse again: %v", s, got, err)
		}
		if !maps.Equal(again, got) {
			t.Fatalf("ParseMinTCB(%q) = %v, but its formatted form parses as %v", s, got, again)
		}
	})
}

func TestParseMinTCBNotation(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{in: "microcode=213", want: 213},
		{in: "microcode=0213", want: 213},
		{in: "microcode=0xd5", want: 213},
		{in: "microcode=0XD5", want: 213},
		{in: "microcode=0", want: 0},
		{in: "microcode=0b11010101", wantErr: true},
		{in: "microcode=0o325", wantErr: true},
		{in: "microcode=2_13", wantErr: true},
		{in: "microcode=0x", wantErr: true},
		{in: "microcode=+213", wantErr: true},
		{in: "microcode=213,microcode=1", wantErr: true},
		{in: "microcode=213, microcode =213", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseMinTCB(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseMinTCB(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMinTCB(%q): %v", tc.in, err)
			continue
		}
		if got["microcode"] != tc.want {
			t.Errorf("ParseMinTCB(%q)[microcode] = %d, want %d", tc.in, got["microcode"], tc.want)
		}
	}
}
