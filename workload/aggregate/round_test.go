package aggregate

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/cloister-dev/cloister/workload"
)

func testParties(names ...string) []Party {
	var ps []Party
	for i, n := range names {
		var h workload.Digest
		h[0] = byte(i + 1)
		ps = append(ps, Party{Name: n, KeySHA256: h})
	}
	return ps
}

func TestParseManifestRejects(t *testing.T) {
	two := `[{"name":"a","key_sha256":"` + strings.Repeat("01", 32) + `"},{"name":"b","key_sha256":"` + strings.Repeat("02", 32) + `"}]`
	sameKey := `[{"name":"a","key_sha256":"` + strings.Repeat("01", 32) + `"},{"name":"b","key_sha256":"` + strings.Repeat("01", 32) + `"}]`
	tests := []struct {
		name, raw, want string
	}{
		{"not JSON", `{`, "invalid manifest JSON"},
		{"unknown field", `{"dimension":1,"min_clients":2,"parties":` + two + `,"noise":1}`, "unknown field"},
		{"zero dimension", `{"dimension":0,"min_clients":2,"parties":` + two + `}`, "dimension 0"},
		{"huge dimension", `{"dimension":4194305,"min_clients":2,"parties":` + two + `}`, "dimension"},
		{"threshold of one", `{"dimension":1,"min_clients":1,"parties":` + two + `}`, "min_clients 1"},
		{"negative clip", `{"dimension":1,"min_clients":2,"clip_norm":-1,"parties":` + two + `}`, "clip_norm"},
		{"too few parties", `{"dimension":1,"min_clients":3,"parties":` + two + `}`, "never reach"},
		{"one key twice", `{"dimension":1,"min_clients":2,"parties":` + sameKey + `}`, "of another party"},
		{"bad key", `{"dimension":1,"min_clients":2,"parties":[{"name":"a","key_sha256":"abcd"}]}`, "invalid SHA-256"},
		{"bad name", `{"dimension":1,"min_clients":1,"parties":[{"name":"A B","key_sha256":"` + strings.Repeat("01", 32) + `"}]}`, "min_clients"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseManifest([]byte(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseManifest() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// The digest ignores whitespace and key order but not values.
func TestManifestDigest(t *testing.T) {
	p := `[{"name":"a","key_sha256":"` + strings.Repeat("01", 32) + `"},{"name":"b","key_sha256":"` + strings.Repeat("02", 32) + `"}]`
	_, x, err := ParseManifest([]byte(`{"dimension":3,"min_clients":2,"parties":` + p + `}`))
	if err != nil {
		t.Fatal(err)
	}
	_, y, err := ParseManifest([]byte(`{ "parties": ` + p + `, "min_clients": 2, "dimension": 3 }`))
	if err != nil {
		t.Fatal(err)
	}
	if x != y {
		t.Error("whitespace or key order changed the digest")
	}
	_, z, err := ParseManifest([]byte(`{"dimension":3,"min_clients":2,"clip_norm":1,"parties":` + p + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if z == x {
		t.Error("clip_norm did not change the digest")
	}
}

func newAggregator(t testing.TB, m Manifest) *Aggregator {
	t.Helper()
	agg, err := New(&m)
	if err != nil {
		t.Fatal(err)
	}
	return agg
}

// An update above ClipNorm is scaled to norm ClipNorm; one below is
// added unchanged.
func TestSubmitClipsToNorm(t *testing.T) {
	agg := newAggregator(t, Manifest{Dimension: 2, MinClients: 2, ClipNorm: 5, Parties: testParties("a", "b")})
	if err := agg.Submit(1, "a", []float64{30, 40}); err != nil {
		t.Fatal(err)
	}
	if err := agg.Submit(1, "b", []float64{1, 0}); err != nil {
		t.Fatal(err)
	}
	res, err := agg.Close(1)
	if err != nil {
		t.Fatal(err)
	}
	// (3,4) clipped from (30,40), plus (1,0), over 2.
	want := []float64{2, 2}
	for i := range want {
		if math.Abs(res.Mean[i]-want[i]) > 1e-12 {
			t.Errorf("mean[%d] = %v, want %v", i, res.Mean[i], want[i])
		}
	}
}

// Submit zeroes the caller's update whether it is accepted or rejected,
// and Close zeroes the running sum.
func TestUpdatesAreZeroed(t *testing.T) {
	agg := newAggregator(t, Manifest{Dimension: 2, MinClients: 2, Parties: testParties("a", "b")})
	accepted := []float64{7, 8}
	if err := agg.Submit(1, "a", accepted); err != nil {
		t.Fatal(err)
	}
	duplicate := []float64{9, 9}
	if err := agg.Submit(1, "a", duplicate); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v, want ErrDuplicate", err)
	}
	for name, v := range map[string][]float64{"accepted": accepted, "rejected": duplicate} {
		if v[0] != 0 || v[1] != 0 {
			t.Errorf("%s update = %v after Submit, want zeros", name, v)
		}
	}

	if err := agg.Submit(1, "b", []float64{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := agg.Close(1); err != nil {
		t.Fatal(err)
	}
	for i, s := range agg.sum {
		if s != 0 {
			t.Errorf("sum[%d] = %v after Close, want 0", i, s)
		}
	}
}

func TestSubmitRejectsInvalid(t *testing.T) {
	agg := newAggregator(t, Manifest{Dimension: 2, MinClients: 2, Parties: testParties("a", "b")})
	for _, v := range [][]float64{
		{math.NaN(), 0},
		{0, math.Inf(-1)},
		{math.MaxFloat64, math.MaxFloat64},
		{1},
	} {
		if err := agg.Submit(1, "a", v); !errors.Is(err, ErrInvalidUpdate) {
			t.Errorf("Submit(%v) = %v, want ErrInvalidUpdate", v, err)
		}
	}
	if err := agg.Submit(1, "z", []float64{1, 1}); !errors.Is(err, ErrUnknownParty) {
		t.Errorf("Submit by an unknown party = %v, want ErrUnknownParty", err)
	}
	if _, n := agg.Status(); n != 0 {
		t.Errorf("%d contributors after rejected updates, want 0", n)
	}
}

func TestResultRetention(t *testing.T) {
	agg := newAggregator(t, Manifest{Dimension: 1, MinClients: 2, Parties: testParties("a", "b")})
	retained := retainedRounds(1)
	for round := uint64(1); round <= retained+1; round++ {
		agg.Submit(round, "a", []float64{1})
		agg.Submit(round, "b", []float64{1})
		if _, err := agg.Close(round); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := agg.Result(1); !errors.Is(err, ErrRoundNotClosed) {
		t.Errorf("round 1 after %d more rounds: %v, want ErrRoundNotClosed", retained, err)
	}
	if _, err := agg.Result(2); err != nil {
		t.Errorf("round 2, the oldest retained: %v", err)
	}
	if _, err := agg.Result(retained + 1); err != nil {
		t.Errorf("latest round: %v", err)
	}
}

func TestRetainedRoundsBoundsMemory(t *testing.T) {
	tests := []struct {
		dimension int
		want      uint64
	}{
		{1, maxRetainedRounds},
		{maxRetainedBytes / (8 * maxRetainedRounds), maxRetainedRounds},
		{maxRetainedBytes/(8*maxRetainedRounds) + 1, maxRetainedRounds - 1},
		{MaxDimension, 8},
		{maxRetainedBytes / 8, 1},
		{maxRetainedBytes, 1},
	}
	for _, tt := range tests {
		got := retainedRounds(tt.dimension)
		if got != tt.want {
			t.Errorf("retainedRounds(%d) = %d, want %d", tt.dimension, got, tt.want)
		}
		if size := got * 8 * uint64(tt.dimension); size > maxRetainedBytes && got > 1 {
			t.Errorf("retainedRounds(%d) keeps %d bytes of means, more than %d", tt.dimension, size, maxRetainedBytes)
		}
	}
}

// Concurrent submissions of many parties all count once, and the mean is
// exact.
func TestSubmitConcurrent(t *testing.T) {
	const n = 64
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i)
	}
	agg := newAggregator(t, Manifest{Dimension: 3, MinClients: n, Parties: testParties(names...)})
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			// Each party also retries once; the retry must be rejected.
			if err := agg.Submit(1, name, []float64{1, 2, 3}); err != nil {
				t.Error(err)
			}
			if err := agg.Submit(1, name, []float64{100, 100, 100}); !errors.Is(err, ErrDuplicate) {
				t.Errorf("retry of %s: %v, want ErrDuplicate", name, err)
			}
		})
	}
	wg.Wait()
	res, err := agg.Close(1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Contributors != n || res.Mean[0] != 1 || res.Mean[1] != 2 || res.Mean[2] != 3 {
		t.Errorf("result = %+v, want %d contributors and mean [1 2 3]", res, n)
	}
}

// Clipping scales an update by its L2 norm, which is computed as the
// square root of the sum of squares. An update whose sum of squares
// overflows float64 is rejected, also when clip_norm is set, and an
// update just below that bound is clipped.
func TestSubmitNormOverflowWithClipping(t *testing.T) {
	tests := []struct {
		name    string
		update  []float64
		wantErr bool
	}{
		{"element 1e200", []float64{1e200, 0}, true},
		{"two elements 1e154", []float64{1e154, 1e154}, true},
		{"element 1e150", []float64{1e150, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agg := newAggregator(t, Manifest{Dimension: 2, MinClients: 2, ClipNorm: 10, Parties: testParties("a", "b")})
			err := agg.Submit(1, "a", tt.update)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Submit: %v", err)
				}
				if err := agg.Submit(1, "b", []float64{0, 0}); err != nil {
					t.Fatal(err)
				}
				res, err := agg.Close(1)
				if err != nil {
					t.Fatal(err)
				}
				// The update is clipped to (10, 0), and the mean of it and
				// (0, 0) is (5, 0).
				if math.Abs(res.Mean[0]-5) > 1e-12 {
					t.Errorf("mean[0] = %v, want 5", res.Mean[0])
				}
				return
			}
			if !errors.Is(err, ErrInvalidUpdate) {
				t.Fatalf("Submit: %v, want ErrInvalidUpdate", err)
			}
			if !strings.Contains(err.Error(), "overflows float64") {
				t.Errorf("error %q does not say that the norm overflows", err)
			}
		})
	}
}

// submit returns the round's contributors as counted under its lock, so
// the HTTP reply cannot report a count of the next round.
func TestSubmitReturnsContributors(t *testing.T) {
	agg := newAggregator(t, Manifest{Dimension: 1, MinClients: 2, Parties: testParties("a", "b", "c")})
	for i, party := range []string{"a", "b"} {
		n, err := agg.submit(1, party, []float64{1})
		if err != nil {
			t.Fatalf("submit %s: %v", party, err)
		}
		if n != i+1 {
			t.Errorf("submit %s returned %d contributors, want %d", party, n, i+1)
		}
	}
	if _, err := agg.Close(1); err != nil {
		t.Fatal(err)
	}
	n, err := agg.submit(2, "c", []float64{1})
	if err != nil {
		t.Fatalf("submit c in round 2: %v", err)
	}
	if n != 1 {
		t.Errorf("first submit of round 2 returned %d contributors, want 1", n)
	}
	if n, err := agg.submit(2, "c", []float64{1}); err == nil || n != 0 {
		t.Errorf("duplicate submit returned %d, %v; want 0 and an error", n, err)
	}
}
