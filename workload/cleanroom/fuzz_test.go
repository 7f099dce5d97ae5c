package cleanroom

import (
	"bytes"
	"context"
	"math"
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

// FuzzConvertReal checks that a REAL field is either rejected or becomes a
// finite float64, or NULL when empty.
func FuzzConvertReal(f *testing.F) {
	for _, s := range []string{"12.5", "-3", "+0.25", "1e3", ".5", "5.", "", "NaN", "Inf", "1e400", "0x1p4", "1_000", "177770"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, field string) {
		v, err := convert(field, "REAL")
		if err != nil {
			return
		}
		if field == "" {
			if v != nil {
				t.Fatalf("empty field converted to %v, want NULL", v)
			}
			return
		}
		x, ok := v.(float64)
		if !ok {
			t.Fatalf("field %q converted to %T, want float64", field, v)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Fatalf("field %q converted to %v, want a finite number", field, x)
		}
	})
}
