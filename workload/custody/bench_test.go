package custody

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloister-dev/cloister/workload"
)

// benchService is a Service with one key of each type, built without the
// key broker.
func benchService(b *testing.B) *Service {
	b.Helper()
	m := &Manifest{SealingKey: "a/b/c", Parties: []Party{{Name: "p", KeySHA256: workload.Digest{1}}}}
	s := &Service{m: m, keys: map[string]*signingKey{}, log: quietLogger()}
	for _, typ := range []KeyType{Ed25519, ECDSAP256, Secp256k1} {
		key, secret, err := generateKey(typ)
		if err != nil {
			b.Fatal(err)
		}
		clear(secret)
		m.Keys = append(m.Keys, KeyPolicy{Name: string(typ), Type: typ, Signers: []string{"p"}, MessagePrefixes: []string{"tx:"}})
		s.keys[string(typ)] = key
	}
	return s
}

var benchMessage = []byte("tx:0200000001a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90")

// BenchmarkSignBare is the baseline: one signature with the key in
// memory, as Service holds it.
func BenchmarkSignBare(b *testing.B) {
	s := benchService(b)
	for _, typ := range []KeyType{Ed25519, ECDSAP256, Secp256k1} {
		b.Run(string(typ), func(b *testing.B) {
			key := s.keys[string(typ)]
			for b.Loop() {
				if _, err := key.sign(benchMessage); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignAPI signs through the HTTP handler: JSON decoding, party
// and prefix authorization, signing and JSON encoding, without the TLS
// connection.
func BenchmarkSignAPI(b *testing.B) {
	s := benchService(b)
	h := NewHandler(s, quietLogger())
	body, err := json.Marshal(SignRequest{Message: benchMessage})
	if err != nil {
		b.Fatal(err)
	}
	ctx := workload.WithParty(context.Background(), workload.Party{Name: "p", KeyHash: workload.Digest{1}})
	for _, typ := range []KeyType{Ed25519, ECDSAP256, Secp256k1} {
		b.Run(string(typ), func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/keys/"+string(typ)+"/sign", bytes.NewReader(body))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
