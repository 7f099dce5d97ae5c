package cleanroom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
)

// realManifest returns the example manifest with bank_a_fraud's
// amount_cents column as REAL and a query that releases its sum.
func realManifest(t *testing.T) []byte {
	t.Helper()
	return editManifest(t, func(m map[string]any) {
		cols := m["tables"].([]any)[0].(map[string]any)["columns"].([]any)
		cols[4].(map[string]any)["type"] = "REAL"
		m["query"] = "SELECT COUNT(*) AS customers, SUM(amount_cents) AS total FROM bank_a_fraud"
		m["min_group_size"] = 1
	})
}

// A REAL field takes a decimal number with an optional sign and exponent.
// NaN, which SQLite would store as NULL, infinities, which would fail the
// query for every recipient, and Go's hexadecimal and underscore syntax
// are rejected at upload with the line and the column, over RA-TLS.
func TestCleanRoomRealFields(t *testing.T) {
	manifest := realManifest(t)
	const header = "report_id,customer_id,merchant_id,device_id,amount_cents,reported_on\n"
	cases := []struct {
		field string
		ok    bool
	}{
		{"12.5", true},
		{"-3", true},
		{"+0.25", true},
		{"1e3", true},
		{"-2.5E-3", true},
		{".5", true},
		{"5.", true},
		{"", true},
		{"NaN", false},
		{"nan", false},
		{"Inf", false},
		{"+Inf", false},
		{"-infinity", false},
		{"1e400", false},
		{"0x1p4", false},
		{"1_000", false},
		{" 5", false},
		{"5e", false},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			tr := startRoom(t, manifest)
			a, _ := tr.banks(t, manifest)
			body := header + "1,A-1,M-1,D-1," + tc.field + ",2026-01-01\n"
			_, err := a.Upload(context.Background(), "bank_a_fraud", strings.NewReader(body))
			if tc.ok {
				if err != nil {
					t.Fatalf("upload of REAL field %q: %v", tc.field, err)
				}
				return
			}
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("upload of REAL field %q: %v, want an HTTP 400 rejection", tc.field, err)
			}
			if se.Code != http.StatusBadRequest {
				t.Errorf("status %d, want %d", se.Code, http.StatusBadRequest)
			}
			if !strings.Contains(se.Message, "line 2, column amount_cents") {
				t.Errorf("error %q does not name line 2 and column amount_cents", se.Message)
			}
			if tc.field != "" && strings.Contains(se.Message, tc.field) {
				t.Errorf("error %q repeats the uploaded value", se.Message)
			}
			if missing := tr.room.Missing(); len(missing) != 2 {
				t.Errorf("missing tables %v after a rejected upload, want both", missing)
			}
		})
	}
}

// A group size must be an integer that int64 can represent. A float outside that
// range is rejected as out of range rather than converted, because Go
// leaves that conversion to the platform.
func TestGroupSizeValues(t *testing.T) {
	cases := []struct {
		value   any
		want    int64
		wantErr string
	}{
		{int64(7), 7, ""},
		{float64(5), 5, ""},
		{float64(-9223372036854775808), -9223372036854775808, ""},
		{5.5, 0, "fractional"},
		{1e300, 0, "outside the range of a 64-bit integer"},
		{float64(9223372036854775807), 0, "outside the range of a 64-bit integer"},
		{math.Inf(1), 0, "infinite"},
		{math.Inf(-1), 0, "infinite"},
		{math.NaN(), 0, "not a number"},
		{nil, 0, "NULL"},
		{"12", 0, "TEXT"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.value), func(t *testing.T) {
			got, err := groupSize(tc.value)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("groupSize(%v): %v", tc.value, err)
				}
				if got != tc.want {
					t.Errorf("groupSize(%v) = %d, want %d", tc.value, got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("groupSize(%v) = %d, want an error containing %q", tc.value, got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("groupSize(%v): %q, want an error containing %q", tc.value, err, tc.wantErr)
			}
		})
	}
}
