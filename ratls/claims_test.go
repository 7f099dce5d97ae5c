package ratls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// The cloister-v1 rule defines the whole claims map: a claim it does not
// define, or a role other than server and client, is rejected rather
// than ignored, and the error names the claim.
func TestCloisterV1ClaimsMap(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(map[string]any)
		field  string
		reason string
	}{
		{name: "as issued", edit: func(map[string]any) {}},
		{name: "unknown claim", edit: func(m map[string]any) { m["exp"] = int64(4102444800) },
			field: "claims", reason: `"exp"`},
		{name: "unknown role", edit: func(m map[string]any) { m[claimRole] = "admin" },
			field: "claims.role", reason: `"admin"`},
		{name: "empty role", edit: func(m map[string]any) { m[claimRole] = "" },
			field: "claims.role", reason: `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			spkiHash := sha256.Sum256(spkiOf(t, key))
			entry, _ := encMode.Marshal([]any{uint64(hashSHA256), spkiHash[:]})
			issued := time.Now().Truncate(time.Second)
			m := map[string]any{
				claimBinding: BindingV1, claimPubkeyHash: entry, claimNonce: make([]byte, 32),
				claimIssued: issued.Unix(), claimRole: string(RoleServer),
			}
			tt.edit(m)
			claims, err := encMode.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			value, _ := encMode.Marshal(cborTag(TagSNPReport, []any{fakeReport(false, [32]byte{}, certReportData(claims)), claims}))
			cert := selfSignAt(t, key, []pkix.Extension{{Id: OIDTaggedEvidence, Value: value}}, issued, issued.Add(time.Hour))

			_, _, err = VerifyCertificate(context.Background(), cert, attest.Options{})
			if tt.field == "" {
				if err != nil {
					t.Fatalf("VerifyCertificate: %v", err)
				}
				return
			}
			var aerr *attest.Error
			if !errors.As(err, &aerr) || !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, want a malformed *attest.Error", err)
			}
			if aerr.Field != tt.field {
				t.Errorf("field %q, want %q", aerr.Field, tt.field)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %v does not name %s", err, tt.reason)
			}
		})
	}
}
