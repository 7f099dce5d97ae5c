package aggregate

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	id := SPKIHash([]byte("a"))
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero dimension", Config{MinClients: 2}, "dimension 0"},
		{"huge dimension", Config{Dimension: MaxDimension + 1, MinClients: 2}, "dimension"},
		{"threshold of one", Config{Dimension: 1, MinClients: 1}, "min_clients 1"},
		{"negative clip", Config{Dimension: 1, MinClients: 2, ClipNorm: -1}, "clip_norm"},
		{"NaN clip", Config{Dimension: 1, MinClients: 2, ClipNorm: math.NaN()}, "clip_norm"},
		{"uppercase party", Config{Dimension: 1, MinClients: 2, Parties: []string{strings.ToUpper(id), id}}, "lowercase hex"},
		{"short party", Config{Dimension: 1, MinClients: 2, Parties: []string{"abcd", id}}, "lowercase hex"},
		{"too few parties", Config{Dimension: 1, MinClients: 3, Parties: []string{id, SPKIHash([]byte("b"))}}, "never reach"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if err := (Config{Dimension: 1, MinClients: 2}).Validate(); err != nil {
		t.Errorf("valid configuration: %v", err)
	}
}

func TestConfigDigestCanonical(t *testing.T) {
	a, b := SPKIHash([]byte("a")), SPKIHash([]byte("b"))
	x := Config{Dimension: 3, MinClients: 2, Parties: []string{a, b}}
	y := Config{Dimension: 3, MinClients: 2, Parties: []string{b, a, a}}
	if x.Digest() != y.Digest() {
		t.Error("party order or repetition changed the digest")
	}
	for _, changed := range []Config{
		{Dimension: 4, MinClients: 2, Parties: []string{a, b}},
		{Dimension: 3, MinClients: 3, Parties: []string{a, b}},
		{Dimension: 3, MinClients: 2, ClipNorm: 1, Parties: []string{a, b}},
		{Dimension: 3, MinClients: 2, Parties: []string{a}},
	} {
		if changed.Digest() == x.Digest() {
			t.Errorf("%+v has the digest of %+v", changed, x)
		}
	}
}

// An update above ClipNorm is scaled to norm ClipNorm; one below is
// added unchanged.
func TestSubmitClipsToNorm(t *testing.T) {
	agg, err := New(Config{Dimension: 2, MinClients: 2, ClipNorm: 5})
	if err != nil {
		t.Fatal(err)
	}
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
	agg, err := New(Config{Dimension: 2, MinClients: 2})
	if err != nil {
		t.Fatal(err)
	}
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

func TestSubmitRejectsNonFinite(t *testing.T) {
	agg, err := New(Config{Dimension: 2, MinClients: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range [][]float64{
		{math.NaN(), 0},
		{0, math.Inf(-1)},
		{math.MaxFloat64, math.MaxFloat64},
	} {
		if err := agg.Submit(1, "a", v); !errors.Is(err, ErrInvalidUpdate) {
			t.Errorf("Submit(%v) = %v, want ErrInvalidUpdate", v, err)
		}
	}
	if _, n := agg.Status(); n != 0 {
		t.Errorf("%d contributors after rejected updates, want 0", n)
	}
}

func TestResultRetention(t *testing.T) {
	agg, err := New(Config{Dimension: 1, MinClients: 2})
	if err != nil {
		t.Fatal(err)
	}
	for round := uint64(1); round <= keptResults+1; round++ {
		agg.Submit(round, "a", []float64{1})
		agg.Submit(round, "b", []float64{1})
		if _, err := agg.Close(round); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := agg.Result(1); !errors.Is(err, ErrRoundNotClosed) {
		t.Errorf("round 1 after %d more rounds: %v, want ErrRoundNotClosed", keptResults, err)
	}
	if _, err := agg.Result(keptResults + 1); err != nil {
		t.Errorf("latest round: %v", err)
	}
}
