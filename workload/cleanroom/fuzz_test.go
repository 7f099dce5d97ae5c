package cleanroom

import (
	"bytes"
	"context"
	"testing"

	"github.com/cloister-dev/cloister/workload/workloadtest"
)

func FuzzParseManifest(f *testing.F) {
	f.Add(readExample(f, "manifest.json"))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"name":"x","parties":[{"name":"a","key_sha256":"00"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, _, err := ParseManifest(raw)
		if err == nil && m.Validate() != nil {
			t.Fatal("ParseManifest accepted a manifest that Validate rejects")
		}
	})
}

func FuzzUpload(f *testing.F) {
	csvA := readExample(f, "bank_a_fraud.csv")
	f.Add(csvA)
	for _, n := range []int{0, 1, 70, 71, 100} {
		f.Add(csvA[:n])
	}
	f.Add([]byte("report_id,customer_id,merchant_id,device_id,amount_cents,reported_on\n\"1,2\n"))
	m, d, err := ParseManifest(readExample(f, "manifest.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		room, err := NewRoom(context.Background(), m, d, Options{Log: workloadtest.QuietLog()})
		if err != nil {
			t.Fatal(err)
		}
		defer room.Close()
		rows, err := room.Upload(context.Background(), "bank-a", "bank_a_fraud", bytes.NewReader(body))
		if err == nil && rows == 0 {
			t.Fatal("Upload accepted a file without rows")
		}
	})
}
