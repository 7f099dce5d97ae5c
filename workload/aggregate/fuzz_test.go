package aggregate

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

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
		agg, err := New(Config{Dimension: 3, MinClients: 2, ClipNorm: 1})
		if err != nil {
			t.Fatal(err)
		}
		h := NewHandler(agg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		req := httptest.NewRequest(http.MethodPost, "/v1/rounds/1/updates", bytes.NewReader(body))
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{RawSubjectPublicKeyInfo: []byte("p")}}}
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
