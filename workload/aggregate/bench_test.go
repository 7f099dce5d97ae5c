package aggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// benchDimension is the update length of the benchmark: a small model's
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

// cost accumulates the wall time and process CPU time of one variant.
type cost struct{ wall, cpu time.Duration }

// measure adds the wall and CPU time of fn to c.
func (c *cost) measure(b *testing.B, fn func()) {
	start, cpu := time.Now(), cpuTime(b)
	fn()
	c.wall += time.Since(start)
	c.cpu += cpuTime(b) - cpu
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAggregate adds one round of benchPartiesPerRound updates per
// iteration in three ways and reports the time per update of each:
//
//   - sum: the baseline, copying each vector and adding it to a running
//     sum in memory (the copy is there because Submit zeroes its input);
//   - aggregator: Aggregator.Submit (finite check, norm, clipping,
//     duplicate check, zeroing) and Close of the round;
//   - handler: the HTTP handler's JSON decoding and Aggregator.Submit,
//     without the TLS connection.
//
// The three run in turn inside each iteration, so that they see the same
// machine load. The ratios compare process CPU time, which a shared
// machine disturbs less than wall time.
func BenchmarkAggregate(b *testing.B) {
	update := benchUpdate()
	buf := make([]float64, benchDimension)
	sum := make([]float64, benchDimension)

	m := benchManifest()
	agg := newAggregator(b, m)
	parties := m.WorkloadParties()
	handlerAgg := newAggregator(b, m)
	h := NewHandler(handlerAgg, workload.Digest{}, workloadtest.QuietLog())
	body, err := json.Marshal(UpdateRequest{Update: update})
	if err != nil {
		b.Fatal(err)
	}
	ctxs := make([]context.Context, len(parties))
	for i, p := range parties {
		ctxs[i] = workload.WithParty(context.Background(), p)
	}

	var sumCost, aggCost, handlerCost cost
	round := uint64(1)
	for b.Loop() {
		sumCost.measure(b, func() {
			for range benchPartiesPerRound {
				copy(buf, update)
				for i, x := range buf {
					sum[i] += x
				}
			}
		})
		aggCost.measure(b, func() {
			for _, p := range parties {
				copy(buf, update)
				if err := agg.Submit(round, p.Name, buf); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := agg.Close(round); err != nil {
				b.Fatal(err)
			}
		})
		handlerCost.measure(b, func() {
			for i := range parties {
				req := httptest.NewRequestWithContext(ctxs[i], http.MethodPost, fmt.Sprintf("/v1/rounds/%d/updates", round), bytes.NewReader(body))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			if _, err := handlerAgg.Close(round); err != nil {
				b.Fatal(err)
			}
		})
		round++
	}

	updates := float64(b.N * benchPartiesPerRound)
	for _, v := range []struct {
		name string
		c    cost
	}{{"sum", sumCost}, {"aggregator", aggCost}, {"handler", handlerCost}} {
		b.ReportMetric(float64(v.c.wall.Nanoseconds())/updates, v.name+"-ns/update")
		b.ReportMetric(float64(v.c.cpu.Nanoseconds())/updates, v.name+"-cpu-ns/update")
	}
	b.ReportMetric(float64(aggCost.cpu)/float64(sumCost.cpu), "aggregator/sum")
	b.ReportMetric(float64(handlerCost.cpu)/float64(sumCost.cpu), "handler/sum")
}
