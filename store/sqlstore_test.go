package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// randomID returns 32 random bytes in unpadded base64url, the form of a
// KBS session ID and nonce.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// processCPU returns the CPU time, user and system, that this process has
// used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSessionWrites measures the store's share of a KBS round trip.
// That is three durable transactions: create the session, mark it attested
// with a 5 KB token and audit that, and audit the resource release. A
// session read runs between them, as in the KBS handlers. 16 callers run
// at once, 8 per core with GOMAXPROCS 2. Their transactions take turns on
// a mutex, as the KBS server's writes do in its one batching goroutine,
// but each commits on its own. cpu-ns/op is the process CPU time per round
// trip.
func BenchmarkSessionWrites(b *testing.B) {
	for _, be := range backends(b) {
		b.Run(be.name, func(b *testing.B) {
			s := open(b, be.config())
			ctx := context.Background()
			token := strings.Repeat("t", 5200)
			teeKey := []byte(strings.Repeat("k", 180))
			digest := strings.Repeat("d", 64)

			var writeMu sync.Mutex
			tx := func(fn func(tx Tx) error) error {
				writeMu.Lock()
				defer writeMu.Unlock()
				return s.Tx(ctx, fn)
			}

			b.SetParallelism(8)
			b.ResetTimer()
			start := processCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := sessionRoundTrip(ctx, s, tx, token, teeKey, digest); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// sessionRoundTrip runs the store operations of one KBS round trip, each
// write in a transaction that runTx runs.
func sessionRoundTrip(ctx context.Context, s *sqlStore, runTx func(fn func(tx Tx) error) error, token string, teeKey []byte, digest string) error {
	now := time.Now()
	sess := Session{ID: randomID(), Nonce: randomID(), TEE: "snp", Created: now, Expires: now.Add(5 * time.Minute)}
	if err := runTx(func(tx Tx) error { return tx.CreateSession(ctx, sess) }); err != nil {
		return err
	}
	if _, err := s.GetSession(ctx, sess.ID); err != nil {
		return err
	}
	err := runTx(func(tx Tx) error {
		if err := tx.MarkAttested(ctx, sess.ID, Attestation{Token: token, TEEPublicKey: teeKey, ClaimsDigest: digest}); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, AuditRecord{Action: AuditAttest, Requester: SessionRef(sess.ID), TEE: "snp",
			EvidenceDigest: digest, PolicyDigest: digest, Verdict: "allow"})
		return err
	})
	if err != nil {
		return err
	}
	if _, err := s.GetSession(ctx, sess.ID); err != nil {
		return err
	}
	return runTx(func(tx Tx) error {
		_, err := tx.AppendAudit(ctx, AuditRecord{Action: AuditRelease, Requester: SessionRef(sess.ID), TEE: "snp",
			EvidenceDigest: digest, PolicyDigest: digest, Verdict: "allow", Resource: "default/key/db"})
		return err
	})
}

// Transactions from twice as many goroutines as the SQLite pool has
// connections all commit on a new store, whose statement cache is empty.
// Their audit records form one unbroken chain.
func TestConcurrentTransactions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := open(t, b.config())
		ctx := context.Background()
		const callers, perCaller = 16, 10
		runTx := func(fn func(tx Tx) error) error { return s.Tx(ctx, fn) }

		var wg sync.WaitGroup
		errs := make(chan error, callers*perCaller)
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perCaller {
					errs <- sessionRoundTrip(ctx, s, runTx, "token", []byte("{}"), "digest")
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round trip: %v", err)
			}
		}

		v, err := s.VerifyAudit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v.Broken != nil {
			t.Fatalf("audit chain broken: %s", v.Broken.Reason)
		}
		if want := int64(2 * callers * perCaller); v.Records != want {
			t.Errorf("audit log has %d records, want %d", v.Records, want)
		}
	})
}
