package workload

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cloister-dev/cloister/agent"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/tee/snp"
)

// TEEOptions choose the TEE that a workload runs in.
type TEEOptions struct {
	// Emulated runs the workload in the emulated SEV-SNP TEE, with
	// HOST_DATA set to the manifest digest. Otherwise the first hardware
	// attester found is used, and the host must have launched the TEE
	// with the digest as HOST_DATA or MRCONFIGID.
	Emulated bool
	// Measurement is the emulated launch MEASUREMENT (48 bytes); nil
	// means MeasureExecutable. Hardware ignores it.
	Measurement []byte
	// EmulatorDir, when set, keeps the emulator's development keys and
	// root (ark.pem), so that the root that parties and the attestation
	// service trust survives restarts. An emulator found there is loaded
	// with its saved measurement and host data. OpenTEE fails when the
	// host data differs from the manifest's, or when Measurement is set
	// and differs from the saved one. With Measurement nil, a rebuilt
	// executable keeps the saved measurement. Otherwise a new emulator is
	// saved.
	EmulatorDir string
	// Verify holds the collateral with which a hardware TEE verifies its
	// own evidence at start. The emulated TEE trusts its own root.
	Verify attest.Options
	// EmulatedGPUs adds that many emulated NVIDIA GPUs (1 to
	// nvgpu.MaxEmulatedGPUs, 0 for none) beside the emulated TEE, saved in
	// EmulatorDir/nvidia-gpu when EmulatorDir is set (see
	// agent.OpenGPUEmulator). It needs Emulated, because a hardware TEE's
	// evidence cannot vouch for emulated GPUs.
	EmulatedGPUs int
}

// TEE is the opened TEE of a workload.
type TEE struct {
	Attester attest.Attester
	// Emulator is the emulated TEE, nil on hardware.
	Emulator *snp.Emulator
	// RootPath is the development root file that parties pass as a trust
	// anchor, when EmulatorDir was set.
	RootPath string
	// Claims are the verified claims of the TEE's own evidence: its
	// measurement and the bound manifest digest.
	Claims *attest.Claims
	// GPUs are the emulated GPUs, nil without TEEOptions.EmulatedGPUs.
	// Their evidence goes only to the key broker (Devices), never into
	// the RA-TLS certificates.
	GPUs *agent.GPUSelection
}

// Emulated reports whether the TEE is the emulated one.
func (t *TEE) Emulated() bool { return t.Emulator != nil }

// Devices returns the device attesters whose evidence a key broker client
// sends beside the TEE's (kbs.Client.Devices): the emulated GPUs, or nil.
func (t *TEE) Devices() []attest.Attester {
	if t.GPUs == nil {
		return nil
	}
	return []attest.Attester{t.GPUs.Emulator}
}

// TrustAnchors returns the emulator's development root as a trust-anchor
// set, or nil on hardware.
func (t *TEE) TrustAnchors() *collateral.Set {
	if t.Emulator == nil {
		return nil
	}
	return RootSet(t.Emulator)
}

// RootSet returns e's development root as a trust-anchor set for
// attest.Options.TrustAnchors.
func RootSet(e *snp.Emulator) *collateral.Set {
	s := &collateral.Set{}
	s.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "emulated SEV-SNP development root", Raw: e.Root().Raw, Certificate: e.Root()})
	return s
}

// OpenTEE opens the TEE for a workload bound to manifest and checks that
// the TEE's own evidence binds that digest, so that a host that launched
// the workload with another manifest stops it before any party connects.
func OpenTEE(ctx context.Context, manifest Digest, o TEEOptions) (*TEE, error) {
	if o.EmulatedGPUs != 0 && !o.Emulated {
		return nil, agent.ErrGPUsNeedEmulatedTEE
	}
	t, verify, err := openAttester(manifest, o)
	if err != nil {
		return nil, err
	}

	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ev, err := t.Attester.Attest(ctx, nonce)
	if err != nil {
		return nil, fmt.Errorf("collecting the workload's own evidence from %s: %w", t.Attester.Name(), err)
	}
	claims, err := attest.Verify(ctx, *ev, verify)
	if err != nil {
		return nil, fmt.Errorf("verifying the workload's own evidence: %w", err)
	}
	if err := CheckManifest(claims, manifest); err != nil {
		if t.RootPath != "" {
			return nil, fmt.Errorf("the emulated TEE saved in %s does not bind this workload's manifest (use a new directory for another manifest): %w", filepath.Dir(t.RootPath), err)
		}
		return nil, fmt.Errorf("the TEE does not bind this workload's manifest: %w", err)
	}
	t.Claims = claims

	if o.EmulatedGPUs != 0 {
		if t.GPUs, err = agent.OpenGPUEmulator(o.EmulatorDir, o.EmulatedGPUs); err != nil {
			return nil, fmt.Errorf("opening the emulated GPUs: %w", err)
		}
	}
	return t, nil
}

func openAttester(manifest Digest, o TEEOptions) (*TEE, attest.Options, error) {
	if !o.Emulated {
		// NOTE: no test runs this branch, because the test machines have no
		// SEV-SNP or TDX guest; the emulated branch shares every later step.
		sel, err := agent.OpenAttester(agent.AttesterOptions{})
		if err != nil {
			return nil, attest.Options{}, err
		}
		return &TEE{Attester: sel.Attester}, o.Verify, nil
	}

	if o.EmulatorDir != "" {
		if _, err := os.Stat(filepath.Join(o.EmulatorDir, emulatorRootFile)); err == nil {
			return loadEmulator(o)
		}
	}
	measurement := o.Measurement
	if measurement == nil {
		m, err := MeasureExecutable()
		if err != nil {
			return nil, attest.Options{}, err
		}
		measurement = m
	}
	e, err := snp.NewEmulator(snp.EmulatorOptions{Measurement: measurement, HostData: manifest[:]})
	if err != nil {
		return nil, attest.Options{}, err
	}
	t := &TEE{Attester: e, Emulator: e}
	if o.EmulatorDir != "" {
		if err := e.Save(o.EmulatorDir); err != nil {
			return nil, attest.Options{}, err
		}
		t.RootPath = filepath.Join(o.EmulatorDir, emulatorRootFile)
	}
	return t, attest.Options{Collateral: e.Collateral(), TrustAnchors: RootSet(e)}, nil
}

// emulatorRootFile is the development root's file name that
// snp.Emulator.Save writes.
const emulatorRootFile = "ark.pem"

// loadEmulator opens a saved emulator. Its host data is checked against
// the manifest by OpenTEE's self-check, and its measurement here.
func loadEmulator(o TEEOptions) (*TEE, attest.Options, error) {
	e, err := snp.LoadEmulator(o.EmulatorDir)
	if err != nil {
		return nil, attest.Options{}, err
	}
	t := &TEE{Attester: e, Emulator: e, RootPath: filepath.Join(o.EmulatorDir, emulatorRootFile)}
	verify := attest.Options{Collateral: e.Collateral(), TrustAnchors: RootSet(e)}
	if o.Measurement == nil {
		return t, verify, nil
	}
	ev, err := e.Attest(context.Background(), nil)
	if err != nil {
		return nil, attest.Options{}, err
	}
	claims, err := attest.Verify(context.Background(), *ev, verify)
	if err != nil {
		return nil, attest.Options{}, err
	}
	if !bytes.Equal(claims.Measurement, o.Measurement) {
		return nil, attest.Options{}, fmt.Errorf("the emulated TEE saved in %s has measurement %s, not the requested %x; use a new --emulator-dir",
			o.EmulatorDir, claims.Measurement, o.Measurement)
	}
	return t, verify, nil
}

// MeasureExecutable returns SHA-384 of the running executable, the
// emulated stand-in for a launch measurement: a party that builds the same
// source with the same toolchain gets the same value.
func MeasureExecutable() ([]byte, error) {
	path, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the executable to measure: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("measuring the executable: %w", err)
	}
	defer f.Close()
	h := sha512.New384()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("measuring %s: %w", path, err)
	}
	return h.Sum(nil), nil
}
