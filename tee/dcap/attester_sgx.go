package dcap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/devcall"
)

func init() { attest.RegisterAttester(string(attest.TEESGX), OpenSGXAttester) }

// gramineAttestationDir is the pseudo-filesystem through which Gramine
// (and Occlum's compatible layer) gives an enclave its DCAP quote: write
// the report data to user_report_data, then read quote.
const gramineAttestationDir = "/dev/attestation"

// SGXAttester collects SGX DCAP quotes inside a Gramine enclave.
type SGXAttester struct {
	dir string
	// serial runs one request at a time, because the report data file is
	// shared.
	serial devcall.Serial
}

// OpenSGXAttester returns the SGX attester of this enclave, or an error
// wrapping attest.ErrNoDevice when /dev/attestation is absent or its
// attestation type is not dcap.
func OpenSGXAttester() (attest.Attester, error) {
	return openSGXAttester(gramineAttestationDir)
}

func openSGXAttester(dir string) (*SGXAttester, error) {
	kind, err := os.ReadFile(filepath.Join(dir, "attestation_type"))
	if err != nil {
		return nil, fmt.Errorf("sgx: %s/attestation_type is not readable (not inside a Gramine enclave): %w", dir, attest.ErrNoDevice)
	}
	if k := strings.TrimSpace(string(kind)); k != "dcap" {
		return nil, fmt.Errorf("sgx: attestation type is %q, not dcap; set sgx.remote_attestation = \"dcap\" in the Gramine manifest: %w", k, attest.ErrNoDevice)
	}
	return &SGXAttester{dir: dir}, nil
}

// Name returns "sgx".
func (*SGXAttester) Name() string { return string(attest.TEESGX) }

// Attest returns an SGX quote whose REPORTDATA is reportData, zero-padded
// to 64 bytes. It rejects a quote with other report data, which another
// thread of the enclave causes by writing user_report_data meanwhile. When
// ctx ends first, Attest returns at once and the request runs to its end
// in the background.
func (a *SGXAttester) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	if len(reportData) > 64 {
		return nil, fmt.Errorf("sgx: report data is %d bytes, at most 64 fit in REPORTDATA", len(reportData))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rd [64]byte
	copy(rd[:], reportData)
	return devcall.Do(ctx, &a.serial, "sgx", func() (*attest.Evidence, error) {
		return a.quote(rd)
	})
}

// quote writes rd as the report data, reads the quote and checks it.
func (a *SGXAttester) quote(rd [64]byte) (*attest.Evidence, error) {
	if err := os.WriteFile(filepath.Join(a.dir, "user_report_data"), rd[:], 0o600); err != nil {
		return nil, fmt.Errorf("sgx: writing the report data: %w", err)
	}
	quote, err := os.ReadFile(filepath.Join(a.dir, "quote"))
	if err != nil {
		return nil, fmt.Errorf("sgx: reading the quote: %w", err)
	}
	if err := checkQuote(filepath.Join(a.dir, "quote"), quote, attest.TEESGX, rd); err != nil {
		return nil, fmt.Errorf("sgx: %w", err)
	}
	return &attest.Evidence{Format: "dcap", Data: quote}, nil
}
