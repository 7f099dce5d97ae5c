package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// Two replicas append, directly and through group commit, while a third
// verifies the chain again and again. Records that commit during a walk must
// not be reported as a break, and every record must chain to exactly one
// predecessor.
func TestAuditVerifyDuringConcurrentAppends(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		replicas := []*sqlStore{open(t, b.config()), open(t, b.config())}
		verifier := open(t, b.config())
		const perReplica = 60

		var wg sync.WaitGroup
		errs := make(chan error, 2*len(replicas)*perReplica)
		for r, s := range replicas {
			for _, grouped := range []bool{false, true} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perReplica {
						rec := AuditRecord{Action: AuditDeny, Reason: fmt.Sprintf("replica %d grouped %t record %d", r, grouped, i)}
						var err error
						if grouped {
							_, err = s.AppendAuditGrouped(ctx, rec)
						} else {
							_, err = s.AppendAudit(ctx, rec)
						}
						errs <- err
					}
				}()
			}
		}
		done := make(chan struct{})
		go func() {
			wg.Wait()
			close(done)
		}()

		verifications := 0
	verify:
		for {
			select {
			case <-done:
				break verify
			default:
			}
			v, err := verifier.VerifyAudit(ctx)
			if err != nil {
				t.Fatalf("VerifyAudit during appends: %v", err)
			}
			if v.Broken != nil {
				t.Fatalf("VerifyAudit during appends reports a break: %+v", v.Broken)
			}
			verifications++
		}
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("append: %v", err)
			}
		}
		t.Logf("%d verifications ran during the appends", verifications)

		v, err := verifier.VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("VerifyAudit: %v", err)
		}
		if v.Broken != nil {
			t.Fatalf("VerifyAudit reports a break: %+v", v.Broken)
		}
		if want := int64(2 * len(replicas) * perReplica); v.Records != want {
			t.Errorf("VerifyAudit checked %d records, want %d", v.Records, want)
		}
		list, err := verifier.ListAudit(ctx, AuditQuery{Limit: 10 * perReplica})
		if err != nil {
			t.Fatal(err)
		}
		predecessors := map[string]int64{}
		for _, r := range list {
			if seq, ok := predecessors[string(r.PrevHash)]; ok {
				t.Errorf("records %d and %d chain to the same predecessor", seq, r.Seq)
			}
			predecessors[string(r.PrevHash)] = r.Seq
		}
	})
}
