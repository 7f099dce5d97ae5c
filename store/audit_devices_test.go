package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
)

// testDevices is a Devices value as the key broker writes it for one
// emulated GPU.
const testDevices = "gpu0 nvidia-gpu evidence=5e8c0a3b policy=1d2f7e90 status=affirming emulated"

func TestAuditEncodingDevices(t *testing.T) {
	const requestID, tokenID = "3f2a9c0d1e4b5a67", "9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
	withDevices := v1Record
	withDevices.Devices = testDevices
	withToken := v1Record
	withToken.TokenID = tokenID
	withTokenAndDevices := withToken
	withTokenAndDevices.Devices = testDevices
	withAll := withTokenAndDevices
	withAll.RequestID = requestID
	tests := []struct {
		name     string
		rec      AuditRecord
		encoding string
	}{
		{name: "token ID only as before", rec: withToken, encoding: v1Encoding + fieldHex("") + fieldHex(tokenID)},
		{name: "devices after empty IDs", rec: withDevices, encoding: v1Encoding + fieldHex("") + fieldHex("") + fieldHex(testDevices)},
		{name: "devices after token ID", rec: withTokenAndDevices,
			encoding: v1Encoding + fieldHex("") + fieldHex(tokenID) + fieldHex(testDevices)},
		{name: "devices after both IDs", rec: withAll,
			encoding: v1Encoding + fieldHex(requestID) + fieldHex(tokenID) + fieldHex(testDevices)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(tt.rec.CanonicalEncoding()); got != tt.encoding {
				t.Errorf("CanonicalEncoding =\n%s\nwant\n%s", got, tt.encoding)
			}
		})
	}

	// The same value as a token ID or as the devices, or in a record with
	// or without IDs, must hash differently.
	sameAsToken := v1Record
	sameAsToken.TokenID = testDevices
	checkHashesDistinct(t, map[string]AuditRecord{"no optional fields": v1Record, "token ID": withToken,
		"devices": withDevices, "token ID and devices": withTokenAndDevices, "all": withAll,
		"devices value as token ID": sameAsToken})
}

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
