package ratls

import (
	"crypto/x509"
	"testing"
	"time"
)

// A verified certificate is verified again at its notAfter or once its
// evidence exceeds MaxAge, counting undated evidence from its verification.
func TestCacheUntil(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	v := NewVerifier(VerifyOptions{MaxAge: time.Hour})
	tests := []struct {
		name     string
		notAfter time.Time
		issued   time.Time
		want     time.Time
	}{
		{"dated, long notAfter", now.AddDate(10, 0, 0), now.Add(-10 * time.Minute), now.Add(50 * time.Minute)},
		{"dated, short notAfter", now.Add(5 * time.Minute), now.Add(-10 * time.Minute), now.Add(5 * time.Minute)},
		{"undated, long notAfter", now.AddDate(10, 0, 0), time.Time{}, now.Add(time.Hour)},
		{"undated, short notAfter", now.Add(5 * time.Minute), time.Time{}, now.Add(5 * time.Minute)},
	}
	for _, tt := range tests {
		got := v.cacheUntil(&x509.Certificate{NotAfter: tt.notAfter}, &PeerResult{IssuedAt: tt.issued}, now)
		if !got.Equal(tt.want) {
			t.Errorf("%s: cacheUntil = %s, want %s", tt.name, got, tt.want)
		}
	}
}
