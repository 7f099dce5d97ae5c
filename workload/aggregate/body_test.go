package aggregate

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// An update body is rejected at the first number past the dimension, and
// a body over the size limit gets 413 with the limit.
func TestSubmitBodyBounds(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"too many numbers", `{"update":[` + strings.Repeat("0,", 20) + `0]}`, http.StatusBadRequest, "more than 3 elements"},
		{"too large", `{"update":[` + strings.Repeat(" ", 4096) + `1,2,3]}`, http.StatusRequestEntityTooLarge, "larger than 1120 bytes"},
		{"too large after the object", `{"update":[1,2,3]}` + strings.Repeat(" ", 4096), http.StatusRequestEntityTooLarge, "larger than 1120 bytes"},
		{"text after the object", `{"update":[1,2,3]} x`, http.StatusBadRequest, `the body continues after the closing "}"`},
	}
	for _, tt := range tests {
		m := Manifest{Dimension: 3, MinClients: 2, ClipNorm: 1, Parties: testParties("a", "b")}
		h := NewHandler(newAggregator(t, m), workload.Digest{}, workloadtest.QuietLog())
		req := httptest.NewRequest(http.MethodPost, "/v1/rounds/1/updates", bytes.NewReader([]byte(tt.body)))
		req = req.WithContext(workload.WithParty(req.Context(), m.WorkloadParties()[0]))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.status)
		}
		if msg, _ := workload.ErrorMessage(rec.Body.Bytes()); !strings.Contains(msg, tt.want) {
			t.Errorf("%s: error %q, want one containing %q", tt.name, msg, tt.want)
		}
	}
}
