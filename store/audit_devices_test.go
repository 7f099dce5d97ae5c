package store

import (
	"context"
	"fmt"
	"testing"
)

// testDevices is a Devices value as the key broker writes it for one
// emulated GPU.
const testDevices = "gpu0 nvidia-gpu evidence=5e8c0a3b policy=1d2f7e90 status=affirming emulated"

// appendDevicesMixed appends attest records through every append path.
// Record i has a request ID when i is odd, a token ID when i%4 is 2 or 3,
// and devices unless i%3 is 0. So seq 1 has none, seq 4 both IDs only,
// seq 5 devices only and seq 8 all three.
func appendDevicesMixed(t *testing.T, s *sqlStore) []AuditRecord {
	t.Helper()
	return appendEveryPath(t, s, func(i int) AuditRecord {
		rec := AuditRecord{Action: AuditAttest, Requester: "session:abc", TEE: "snp", Verdict: "affirming"}
		if i%2 == 1 {
			rec.RequestID = fmt.Sprintf("req-%02d", i)
		}
		if i%4 >= 2 {
			rec.TokenID = fmt.Sprintf("tok-%02d", i)
		}
		if i%3 != 0 {
			rec.Devices = fmt.Sprintf("gpu0 nvidia-gpu evidence=%064x policy=%064x status=affirming", i, i+100)
		}
		return rec
	})
}

func TestAuditVerifiesAcrossDevicesMigration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s, appended := testVerifiesAcrossMigration(t, b, auditDevicesMigration, "devices", appendDevicesMixed)

		// The migrated store lists the new records with their devices.
		for _, want := range appended {
			if got := mustRecord(t, s, want.Seq); got.Devices != want.Devices {
				t.Errorf("record %d: stored devices %q, want %q", want.Seq, got.Devices, want.Devices)
			}
		}
	})
}

func TestAuditDevicesTruncated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		long := testDevices
		for len(long) <= MaxAuditFieldSize {
			long += "; " + testDevices
		}
		rec, err := s.AppendAudit(ctx, AuditRecord{Action: AuditAttest, Devices: long})
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Devices) != MaxAuditFieldSize {
			t.Errorf("appended devices have %d bytes, want %d", len(rec.Devices), MaxAuditFieldSize)
		}
		if got := mustRecord(t, s, rec.Seq).Devices; got != rec.Devices {
			t.Errorf("stored devices have %d bytes, want the %d appended", len(got), len(rec.Devices))
		}

		v, err := s.VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("VerifyAudit: %v", err)
		}
		if v.Broken != nil {
			t.Errorf("VerifyAudit reports a break: %+v", v.Broken)
		}
		if v.Records != 1 {
			t.Errorf("VerifyAudit checked %d records, want 1", v.Records)
		}
	})
}
