package custody

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// benchService is a Service with one key of each type, built without the
// key broker.
func benchService(b *testing.B) *Service {
	b.Helper()
	m := &Manifest{SealingKey: "a/b/c", Parties: []Party{{Name: "p", KeySHA256: workload.Digest{1}}}}
	s := &Service{m: m, keys: map[string]*signingKey{}, log: workloadtest.QuietLog()}
	for _, typ := range []KeyType{Ed25519, ECDSAP256, Secp256k1} {
		key, secret, err := generateKey(typ)
		if err != nil {
			b.Fatal(err)
		}
		clear(secret)
		m.Keys = append(m.Keys, KeyPolicy{Name: string(typ), Type: typ, Signers: []string{"p"}, MessagePrefixes: []string{"tx:"}})
		s.keys[string(typ)] = key
	}
	return s
}

var benchMessage = []byte("tx:0200000001a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90")

// signsPerTurn is how many signatures each variant makes in turn, so
// that the two CPU-time reads per turn are small against the work.
const signsPerTurn = 20

// BenchmarkSign compares, per key type, a bare signature with the key in
// memory as Service holds it ("bare") with a signature through the HTTP
// handler ("api": JSON decoding, party and prefix authorization, signing
// and JSON encoding, without the TLS connection). The two run in turn
// inside each iteration, so that they see the same machine load, and the
// ratio compares process CPU time, which a shared machine disturbs less
// than wall time.
func BenchmarkSign(b *testing.B) {
	s := benchService(b)
	h := NewHandler(s, workloadtest.QuietLog())
	body, err := json.Marshal(SignRequest{Message: benchMessage})
	if err != nil {
		b.Fatal(err)
	}
	ctx := workload.WithParty(context.Background(), workload.Party{Name: "p", KeyHash: workload.Digest{1}})
	for _, typ := range []KeyType{Ed25519, ECDSAP256, Secp256k1} {
		b.Run(string(typ), func(b *testing.B) {
			key := s.keys[string(typ)]
			var bareWall, bareCPU, apiWall, apiCPU time.Duration
			for b.Loop() {
				start, cpu := time.Now(), cpuTime(b)
				for range signsPerTurn {
					if _, err := key.sign(benchMessage); err != nil {
						b.Fatal(err)
					}
				}
				bareWall += time.Since(start)
				bareCPU += cpuTime(b) - cpu

				start, cpu = time.Now(), cpuTime(b)
				for range signsPerTurn {
					req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/keys/"+string(typ)+"/sign", bytes.NewReader(body))
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
				apiWall += time.Since(start)
				apiCPU += cpuTime(b) - cpu
			}
			n := float64(b.N * signsPerTurn)
			b.ReportMetric(float64(bareWall.Nanoseconds())/n, "bare-ns/sign")
			b.ReportMetric(float64(apiWall.Nanoseconds())/n, "api-ns/sign")
			b.ReportMetric(float64(bareCPU.Nanoseconds())/n, "bare-cpu-ns/sign")
			b.ReportMetric(float64(apiCPU.Nanoseconds())/n, "api-cpu-ns/sign")
			b.ReportMetric(float64(apiCPU)/float64(bareCPU), "api/bare")
		})
	}
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
