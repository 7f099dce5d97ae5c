package aggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloister-dev/cloister/workload"
)

// benchDimension is the update length of the benchmarks: a small model's
// parameter count.
const benchDimension = 10_000

// benchPartiesPerRound is how many updates go into each round before it
// is closed.
const benchPartiesPerRound = 100

func benchManifest() Manifest {
	names := make([]string, benchPartiesPerRound)
	for i := range names {
		names[i] = fmt.Sprintf("party-%d", i)
	}
	return Manifest{Dimension: benchDimension, MinClients: 2, ClipNorm: 10, Parties: testParties(names...)}
}

func benchUpdate() []float64 {
	v := make([]float64, benchDimension)
	for i := range v {
		v[i] = float64(i%97) / 97
	}
	return v
}

// BenchmarkSumInMemory is the baseline: adding the same vectors into a
// running sum, with the copy that Submit's zeroing makes necessary.
func BenchmarkSumInMemory(b *testing.B) {
	update := benchUpdate()
	buf := make([]float64, benchDimension)
	sum := make([]float64, benchDimension)
	b.SetBytes(benchDimension * 8)
	for b.Loop() {
		copy(buf, update)
		for i, x := range buf {
			sum[i] += x
		}
	}
}

// BenchmarkAggregatorSubmit sends the same vectors through
// Aggregator.Submit (finite check, norm, clipping, duplicate check,
// zeroing) and closes a round every benchPartiesPerRound updates.
func BenchmarkAggregatorSubmit(b *testing.B) {
	agg := newAggregator(b, benchManifest())
	parties := make([]string, benchPartiesPerRound)
	for i := range parties {
		parties[i] = agg.m.Parties[i].Name
	}
	update := benchUpdate()
	buf := make([]float64, benchDimension)
	round, n := uint64(1), 0
	b.SetBytes(benchDimension * 8)
	for b.Loop() {
		copy(buf, update)
		if err := agg.Submit(round, parties[n], buf); err != nil {
			b.Fatal(err)
		}
		n++
		if n == benchPartiesPerRound {
			if _, err := agg.Close(round); err != nil {
				b.Fatal(err)
			}
			round, n = round+1, 0
		}
	}
}

// BenchmarkHandlerSubmit adds the HTTP handler's JSON decoding to
// Aggregator.Submit, without the TLS connection.
func BenchmarkHandlerSubmit(b *testing.B) {
	agg := newAggregator(b, benchManifest())
	h := NewHandler(agg, workload.Digest{}, quietLogger())
	body, err := json.Marshal(UpdateRequest{Update: benchUpdate()})
	if err != nil {
		b.Fatal(err)
	}
	ctxs := make([]context.Context, benchPartiesPerRound)
	for i, p := range agg.m.WorkloadParties() {
		ctxs[i] = workload.WithParty(context.Background(), p)
	}
	round, n := uint64(1), 0
	b.SetBytes(benchDimension * 8)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/v1/rounds/%d/updates", round), bytes.NewReader(body))
		req = req.WithContext(ctxs[n])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		n++
		if n == benchPartiesPerRound {
			if _, err := agg.Close(round); err != nil {
				b.Fatal(err)
			}
			round, n = round+1, 0
		}
	}
}
