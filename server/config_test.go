package server

import (
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// New rejects a negative duration instead of reading it as the default,
// so that a mistyped lifetime does not silently become five minutes.
func TestNewRejectsNegativeDurations(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"request timeout", func(c *Config) { c.RequestTimeout = -time.Second }, "RequestTimeout -1s is negative"},
		{"session timeout", func(c *Config) { c.SessionTimeout = -time.Minute }, "SessionTimeout -1m0s is negative"},
		{"token lifetime", func(c *Config) { c.TokenLifetime = -time.Minute }, "TokenLifetime -1m0s is negative"},
		{"token lifetime under a second", func(c *Config) { c.TokenLifetime = 500 * time.Millisecond }, "TokenLifetime 500ms is under one second"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ts.config
			tt.change(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// New rejects the TCB statuses that the serve flag check rejects, so that a
// library caller cannot configure a status that matches no evidence.
func TestNewRejectsInvalidTCBStatuses(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	tests := []struct {
		name     string
		statuses []string
		wantErr  string
	}{
		{"no matching level", []string{attest.TCBUpToDate, attest.TCBNoMatchingLevel}, "TCB status NoMatchingTcbLevel can never be accepted"},
		{"misspelt", []string{"UptoDate"}, `TCB status "UptoDate" is unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ts.config
			cfg.TCBStatuses = tt.statuses
			_, err := New(cfg)
			if err == nil {
				t.Fatalf("New accepted TCBStatuses %q", tt.statuses)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewAcceptsKnownTCBStatuses(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	cfg := ts.config
	cfg.TCBStatuses = []string{attest.TCBUpToDate, attest.TCBOutOfDate, attest.TCBNotDetermined}
	if _, err := New(cfg); err != nil {
		t.Errorf("New error = %v, want none", err)
	}
}
