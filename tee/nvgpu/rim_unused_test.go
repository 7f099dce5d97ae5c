package nvgpu

import (
	"fmt"
	"testing"
)

func TestUnusedRIMsWarning(t *testing.T) {
	rims := make([]*loadedRIM, 11)
	for i := range rims {
		rims[i] = &loadedRIM{signedRIM: &signedRIM{RIM: &RIM{Product: "GH100", Version: fmt.Sprintf("535.%d", i)}},
			source: fmt.Sprintf("r%d.swidtag", i)}
	}
	usedAllBut := func(unused ...int) map[*loadedRIM]bool {
		used := map[*loadedRIM]bool{}
		for _, r := range rims {
			used[r] = true
		}
		for _, i := range unused {
			delete(used, rims[i])
		}
		return used
	}
	all := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}

	tests := []struct {
		name   string
		unused []int
		want   string
	}{
		{name: "all used", want: ""},
		{name: "one", unused: []int{3},
			want: "RIM r3.swidtag (product GH100, version 535.3) matches no GPU of the evidence (GH100 driver 550) and was ignored"},
		{name: "two", unused: []int{1, 4},
			want: "2 RIMs match no GPU of the evidence (GH100 driver 550) and were ignored: " +
				"r1.swidtag (product GH100, version 535.1), r4.swidtag (product GH100, version 535.4)"},
		{name: "more than named", unused: all,
			want: "11 RIMs match no GPU of the evidence (GH100 driver 550) and were ignored: " +
				"r0.swidtag (product GH100, version 535.0), r1.swidtag (product GH100, version 535.1), " +
				"r2.swidtag (product GH100, version 535.2), r3.swidtag (product GH100, version 535.3), " +
				"r4.swidtag (product GH100, version 535.4), r5.swidtag (product GH100, version 535.5), " +
				"r6.swidtag (product GH100, version 535.6), r7.swidtag (product GH100, version 535.7) and 3 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unusedRIMsWarning(rims, usedAllBut(tt.unused...), "GH100 driver 550")
			if got != tt.want {
				t.Errorf("warning:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
