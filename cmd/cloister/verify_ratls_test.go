package main

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/ratls"
	"github.com/cloister-dev/cloister/tee/snp"
)

// writeRATLSCertificate issues an RA-TLS certificate from a new emulated
// SEV-SNP TEE at issued with the given lifetime and writes it as PEM. It
// returns the certificate's path and the development root's path.
func writeRATLSCertificate(t *testing.T, issued time.Time, lifetime time.Duration) (certPath, root string) {
	t.Helper()
	dir := t.TempDir()
	e, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Save(filepath.Join(dir, "dev-tee")); err != nil {
		t.Fatal(err)
	}
	cert, err := ratls.Issue(context.Background(), e, ratls.IssueOptions{Lifetime: lifetime, Now: func() time.Time { return issued }})
	if err != nil {
		t.Fatal(err)
	}
	certPath = filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Leaf.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, filepath.Join(dir, "dev-tee", "ark.pem")
}

func TestVerifyRATLSMaxAge(t *testing.T) {
	issued := time.Now().Truncate(time.Second)
	certPath, root := writeRATLSCertificate(t, issued, 24*time.Hour)
	threeHoursLater := issued.Add(3 * time.Hour).Format(time.RFC3339)
	base := []string{"verify", "--trust-anchor", "snp=" + root, "--allow-emulated"}

	tests := []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{name: "fresh", args: []string{certPath}, code: exitOK},
		{name: "older than default", args: []string{"--at", threeHoursLater, certPath}, code: exitRejected,
			wants: []string{"stale", "value 3h0m0s", "expected at most 1h5m0s", "--max-age"}},
		{name: "within raised maximum", args: []string{"--at", threeHoursLater, "--max-age", "4h", certPath}, code: exitOK},
		{name: "older than lowered maximum", args: []string{"--max-age", "1s", "--at", issued.Add(time.Minute).Format(time.RFC3339), certPath}, code: exitRejected,
			wants: []string{"stale", "value 1m0s", "expected at most 1s"}},
		{name: "zero maximum", args: []string{"--max-age", "0s", certPath}, code: exitUsage, wants: []string{"--max-age 0s is not positive"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCloister(t, append(append([]string{}, base...), tc.args...)...)
			if code := exitCode(t, err); code != tc.code {
				t.Fatalf("exit code %d, want %d: %v\n%s", code, tc.code, err, out)
			}
			text := out
			if err != nil {
				text += err.Error()
			}
			for _, want := range tc.wants {
				if !strings.Contains(text, want) {
					t.Errorf("output and error lack %q:\n%s", want, text)
				}
			}
		})
	}
}
