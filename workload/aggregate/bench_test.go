package aggregate

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchDimension is the update length of the benchmarks: a small model's
// parameter count.
const benchDimension = 10_000

// benchPartiesPerRound is how many updates go into each round before it
// is closed.
const benchPartiesPerRound = 100

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
	agg, err := New(Config{Dimension: benchDimension, MinClients: 2, ClipNorm: 10})
	if err != nil {
		b.Fatal(err)
	}
	parties := make([]string, benchPartiesPerRound)
	for i := range parties {
		parties[i] = fmt.Sprintf("party-%d", i)
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
	agg, err := New(Config{Dimension: benchDimension, MinClients: 2, ClipNorm: 10})
	if err != nil {
		b.Fatal(err)
	}
	h := NewHandler(agg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	body, err := json.Marshal(UpdateRequest{Update: benchUpdate()})
	if err != nil {
		b.Fatal(err)
	}
	states := make([]*tls.ConnectionState, benchPartiesPerRound)
	for i := range states {
		spki := fmt.Appendf(nil, "party-%d", i)
		states[i] = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{RawSubjectPublicKeyInfo: spki}}}
	}
	round, n := uint64(1), 0
	b.SetBytes(benchDimension * 8)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/v1/rounds/%d/updates", round), bytes.NewReader(body))
		req.TLS = states[n]
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
