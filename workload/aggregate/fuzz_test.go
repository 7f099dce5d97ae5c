package aggregate

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// FuzzParseManifest checks that no input makes ParseManifest panic and
// that an accepted manifest validates.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"name":"fl","dimension":3,"min_clients":2,"clip_norm":1.5,"parties":[{"name":"a","key_sha256":"0101010101010101010101010101010101010101010101010101010101010101"},{"name":"b","key_sha256":"0202020202020202020202020202020202020202020202020202020202020202"}]}`))
	f.Add([]byte(`{"dimension":1e400}`))
	f.Add([]byte(`{"parties":[{}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, _, err := ParseManifest(raw)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Errorf("ParseManifest accepted a manifest that fails Validate: %v", err)
		}
	})
}

// FuzzSubmitBody sends arbitrary bodies to the update endpoint: every
// body must get a response, never a panic, and only a well-formed update
// of the right dimension may be accepted.
func FuzzSubmitBody(f *testing.F) {
	f.Add([]byte(`{"update":[1,2,3]}`))
	f.Add([]byte(`{"update":[1e308,1e308,1e308]}`))
	f.Add([]byte(`{"update":[1,2]}`))
	f.Add([]byte(`{"update":null}`))
	f.Add([]byte(`{"update":[1,2,3`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m := Manifest{Dimension: 3, MinClients: 2, ClipNorm: 1, Parties: testParties("a", "b")}
		agg := newAggregator(t, m)
		h := NewHandler(agg, workload.Digest{}, workloadtest.QuietLog())
		req := httptest.NewRequest(http.MethodPost, "/v1/rounds/1/updates", bytes.NewReader(body))
		req = req.WithContext(workload.WithParty(req.Context(), m.WorkloadParties()[0]))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		_, n := agg.Status()
		if rec.Code == http.StatusAccepted && n != 1 {
			t.Errorf("accepted, but %d contributors", n)
		}
		if rec.Code != http.StatusAccepted && n != 0 {
			t.Errorf("status %d, but %d contributors", rec.Code, n)
		}
	})
}
