package ratls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// RFC 5280 section 4.2 requires rejecting a certificate with a critical
// extension the verifier does not process. The evidence extensions count
// as processed, because rats-tls marks them critical.
func TestVerifyCertificateCriticalExtensions(t *testing.T) {
	unknown := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}
	tests := []struct {
		name             string
		evidenceCritical bool
		extra            *pkix.Extension
		want             string
	}{
		{name: "critical evidence extension", evidenceCritical: true},
		{name: "unknown non-critical extension", extra: &pkix.Extension{Id: unknown, Value: []byte{5, 0}}},
		{name: "unknown critical extension", extra: &pkix.Extension{Id: unknown, Critical: true, Value: []byte{5, 0}},
			want: unknown.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			spkiHash := sha256.Sum256(spkiOf(t, key))
			entry, _ := encMode.Marshal([]any{uint64(hashSHA256), spkiHash[:]})
			claims, _ := encMode.Marshal(map[string]any{claimPubkeyHash: entry})
			rd := sha256.Sum256(claims)
			value, _ := encMode.Marshal(cborTag(TagIntelQuoteGramine, []any{fakeReport(false, [32]byte{}, rd[:]), claims}))
			exts := []pkix.Extension{{Id: OIDTaggedEvidence, Critical: tt.evidenceCritical, Value: value}}
			if tt.extra != nil {
				exts = append(exts, *tt.extra)
			}
			cert := selfSign(t, key, exts)

			_, _, err := VerifyCertificate(context.Background(), cert, attest.Options{})
			if tt.want == "" {
				if err != nil {
					t.Errorf("VerifyCertificate: %v", err)
				}
				return
			}
			if !errors.Is(err, attest.ErrUnsupported) {
				t.Errorf("error %v, want ErrUnsupported", err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v does not name %s", err, tt.want)
			}
		})
	}
}
