// Package tsm collects attestation evidence through the Linux configfs-tsm
// report interface (/sys/kernel/config/tsm/report, Linux 6.7 and later)
// for providers that no other TEE package covers: the Arm CCA realm
// guest (provider arm_cca_guest, Linux 6.13 and later), whose outblob is
// the CCA attestation token. The SEV-SNP and TDX providers are handled by
// tee/snp and tee/dcap, which also know their ioctl fallbacks.
//
// The configfs protocol (entry creation and removal, the generation
// counter that detects concurrent writers) is go-configfs-tsm's. This
// package checks the provider, checks that the outblob binds the inblob
// when the provider defines how (the CCA realm challenge), and maps the
// output to attest.Evidence. Its Get, which tee/snp and tee/dcap use too,
// retries a request that raced another writer a bounded number of times.
package tsm

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/devcall"
	"github.com/cloister-dev/cloister/tee/cca"
)

// Provider describes one configfs-tsm provider.
type Provider struct {
	// Name is the provider attribute the kernel driver reports.
	Name string
	// Attester is the attester name, also the OpenAttesters key.
	Attester string
	// Format is the verifier name of the outblob.
	Format string
	// ReportDataSize is the size of the inblob the driver takes; shorter
	// report data is zero-padded to it.
	ReportDataSize int
	// AuxBlob requests the auxblob (certificates the host attached).
	AuxBlob bool
	// ReportData extracts the report data that an outblob binds, so that
	// Attest rejects an outblob that does not carry the inblob written.
	// Nil skips that check.
	ReportData func(outblob []byte) ([]byte, error)
}

// CCA is the Arm CCA realm guest provider. Its inblob is the 64-byte
// realm challenge, and its outblob the CCA attestation token.
var CCA = Provider{
	Name:           "arm_cca_guest",
	Attester:       string(attest.TEECCA),
	Format:         string(attest.TEECCA),
	ReportDataSize: cca.ChallengeSize,
	ReportData:     realmChallenge,
}

// realmChallenge returns the challenge claim of the realm token in a CCA
// token collection, without checking any signature.
func realmChallenge(outblob []byte) ([]byte, error) {
	token, err := cca.Parse(outblob)
	if err != nil {
		return nil, err
	}
	return token.RealmClaims.Challenge, nil
}

func init() {
	attest.RegisterAttester(CCA.Attester, func() (attest.Attester, error) { return Open(CCA) })
}

// Attester requests reports from one configfs-tsm provider.
type Attester struct {
	client   configfsi.Client
	provider Provider
	// serial runs one request at a time, because the kernel generates one
	// configfs-tsm report at a time.
	serial devcall.Serial
}

// Open returns an attester for p on this machine's configfs-tsm, or an
// error wrapping attest.ErrNoDevice when configfs-tsm is absent or its
// provider is another one.
func Open(p Provider) (*Attester, error) {
	c, err := linuxtsm.MakeClient()
	if err != nil {
		return nil, fmt.Errorf("tsm: configfs-tsm is not available: %v: %w", err, attest.ErrNoDevice)
	}
	return New(c, p)
}

// New returns an attester for p on client, checking that the client's
// provider is p.Name.
func New(client configfsi.Client, p Provider) (*Attester, error) {
	r, err := report.CreateOpenReport(client)
	if err != nil {
		return nil, fmt.Errorf("tsm: creating a report entry: %v: %w", err, attest.ErrNoDevice)
	}
	defer r.Destroy()
	// Writing the inblob first makes the provider readable on every
	// configfs-tsm implementation, including go-configfs-tsm's faketsm,
	// which renders read-only attributes only after a write. No report is
	// generated until the outblob is read.
	if err := r.WriteOption("inblob", make([]byte, p.ReportDataSize)); err != nil {
		return nil, fmt.Errorf("tsm: writing the inblob: %w", err)
	}
	got, err := r.ReadOption("provider")
	if err != nil {
		return nil, fmt.Errorf("tsm: reading the provider: %w", err)
	}
	if name := strings.TrimSpace(string(got)); name != p.Name {
		return nil, fmt.Errorf("tsm: configfs-tsm provider is %q, not %s: %w", name, p.Name, attest.ErrNoDevice)
	}
	return &Attester{client: client, provider: p}, nil
}

// Name returns the attester name of the provider ("cca").
func (a *Attester) Name() string { return a.provider.Attester }

// Attest writes reportData, zero-padded to the provider's size, as the
// inblob and returns the outblob, with the auxblob in Evidence.Aux when
// the provider has one. Get removes the report entry afterwards, and
// retries a bounded number of times when the entry's generation shows
// that another writer changed the entry meanwhile. When ctx ends first,
// Attest returns at once and the request runs to its end in the
// background.
func (a *Attester) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	if len(reportData) > a.provider.ReportDataSize {
		return nil, fmt.Errorf("tsm: report data is %d bytes; the %s provider takes at most %d", len(reportData), a.provider.Name, a.provider.ReportDataSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	inblob := make([]byte, a.provider.ReportDataSize)
	copy(inblob, reportData)
	return devcall.Do(ctx, &a.serial, "tsm", func() (*attest.Evidence, error) {
		return a.report(inblob)
	})
}

// report gets a report for inblob and checks it.
func (a *Attester) report(inblob []byte) (*attest.Evidence, error) {
	resp, err := Get(a.client, &report.Request{InBlob: inblob, GetAuxBlob: a.provider.AuxBlob})
	if err != nil {
		return nil, fmt.Errorf("tsm: %s report: %w", a.provider.Name, err)
	}
	if name := strings.TrimSpace(resp.Provider); name != a.provider.Name {
		return nil, fmt.Errorf("tsm: report came from provider %q, not %s", name, a.provider.Name)
	}
	if len(resp.OutBlob) == 0 {
		return nil, fmt.Errorf("tsm: the %s provider returned an empty outblob", a.provider.Name)
	}
	if a.provider.ReportData != nil {
		bound, err := a.provider.ReportData(resp.OutBlob)
		if err != nil {
			return nil, fmt.Errorf("tsm: the %s provider returned an invalid outblob: %w", a.provider.Name, err)
		}
		if !bytes.Equal(bound, inblob) {
			return nil, fmt.Errorf("tsm: the %s provider returned an outblob that binds %x, not the inblob %x, so another request raced this one: retry the request", a.provider.Name, bound, inblob)
		}
	}
	ev := &attest.Evidence{Format: a.provider.Format, Data: resp.OutBlob}
	if len(resp.AuxBlob) > 0 {
		ev.Aux = resp.AuxBlob
	}
	return ev, nil
}
