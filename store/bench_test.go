package store

import (
	"context"
	"testing"
)

// BenchmarkAuditAppend measures audit appends per second from concurrent
// callers, with group commit (one transaction per batch) and without (one
// transaction per append), on each backend. Both modes keep every commit
// durable: SQLite runs WAL with synchronous=FULL, PostgreSQL its defaults.
func BenchmarkAuditAppend(b *testing.B) {
	for _, be := range backends(b) {
		for _, mode := range []string{"group", "single"} {
			b.Run(be.name+"/"+mode, func(b *testing.B) {
				s := open(b, be.config())
				ctx := context.Background()
				rec := AuditRecord{Action: AuditRelease, Requester: "10.0.0.7", TEE: "snp", Verdict: "allow",
					Resource: "default/key/disk", EvidenceDigest: "5d41402abc4b2a76b9719d911017c592", PolicyDigest: "7d793037a0760186574b0282f2f435e7"}

				// 8 callers per core: a service handling concurrent
				// requests, each auditing one decision.
				b.SetParallelism(8)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						var err error
						if mode == "group" {
							_, err = s.AppendAuditGrouped(ctx, rec)
						} else {
							_, err = s.AppendAudit(ctx, rec)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			})
		}
	}
}
