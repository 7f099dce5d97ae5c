package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/snp"

	// The TEE packages register their hardware attesters from init, so
	// that OpenAttester finds every TEE that this build supports.
	_ "github.com/cloister-dev/cloister/tee/dcap"
	_ "github.com/cloister-dev/cloister/tee/nitro"
	_ "github.com/cloister-dev/cloister/tee/tpm"
	_ "github.com/cloister-dev/cloister/tee/tsm"
)

// AttesterOptions choose the evidence source.
type AttesterOptions struct {
	// Emulated skips the hardware and uses the emulated SEV-SNP TEE.
	Emulated bool
	// AllowEmulated falls back to the emulated TEE when no hardware
	// attester is present.
	AllowEmulated bool
	// EmulatorDir holds the emulator's development keys, so that the same
	// development root survives restarts and clients can pin it. It is
	// created when missing. Empty keeps the emulator in memory.
	EmulatorDir string
	// Emulator configures a newly created emulator.
	Emulator snp.EmulatorOptions
	// SNPVMPL, when not nil, is the VMPL at which the SEV-SNP hardware
	// attester requests reports (snp.HardwareAttester.SetVMPL). OpenAttester
	// rejects it when the attester is another TEE's or the emulated TEE.
	SNPVMPL *uint32
	// EmulatedGPUs, when positive, adds that many emulated NVIDIA GPUs,
	// whose evidence a KBS client sends beside the emulated TEE's. Their
	// state is kept in EmulatorDir/nvidia-gpu (see OpenGPUEmulator).
	EmulatedGPUs int
}

// Selection is the chosen attester and, for the emulated TEE, where its
// development root is.
type Selection struct {
	Attester attest.Attester
	// Emulated is true for the emulated TEE.
	Emulated bool
	// RootPath is the development root file clients pass with
	// --trust-anchor, for an emulator saved in EmulatorDir.
	RootPath string
	// Emulator is the emulated TEE, nil for hardware.
	Emulator *snp.Emulator
	// GPUs are the emulated GPUs, nil without AttesterOptions.EmulatedGPUs.
	GPUs *GPUSelection
	// Skipped lists hardware attesters that were present but failed to
	// open.
	Skipped []error
}

// ErrNoTEE reports a machine without a usable hardware attester when the
// emulated TEE is not allowed.
var ErrNoTEE = errors.New("no TEE hardware attester is available on this machine")

// ErrGPUsNeedEmulatedTEE rejects emulated GPUs beside a hardware TEE,
// whose evidence cannot vouch for them.
var ErrGPUsNeedEmulatedTEE = errors.New("emulated GPUs need the emulated TEE: a hardware TEE's evidence cannot vouch for them; pass --emulated with --emulated-gpus, or leave --emulated-gpus out")

// OpenAttester returns the first hardware attester that the TEE packages
// registered and that is present here (attest.OpenAttesters, sorted by
// name), or the emulated SEV-SNP TEE when asked for or allowed.
func OpenAttester(o AttesterOptions) (*Selection, error) {
	if o.EmulatedGPUs > 0 && !o.Emulated {
		return nil, ErrGPUsNeedEmulatedTEE
	}
	if !o.Emulated {
		found, errs := attest.OpenAttesters()
		if len(found) > 0 {
			if err := applySNPVMPL(found[0], o.SNPVMPL); err != nil {
				return nil, err
			}
			return &Selection{Attester: found[0], Skipped: errs}, nil
		}
		if !o.AllowEmulated {
			return nil, fmt.Errorf("%w (no SEV-SNP, TDX, SGX, Arm CCA, Nitro or TPM device found%s)", ErrNoTEE, describeErrors(errs))
		}
	}
	if o.SNPVMPL != nil {
		return nil, fmt.Errorf("an SEV-SNP VMPL (%d) is set, but the emulated TEE reports at VMPL 0 only; leave the VMPL out", *o.SNPVMPL)
	}
	return openEmulator(o)
}

// applySNPVMPL sets vmpl, when not nil, on a, which must be the SEV-SNP
// hardware attester.
func applySNPVMPL(a attest.Attester, vmpl *uint32) error {
	if vmpl == nil {
		return nil
	}
	hw, ok := a.(*snp.HardwareAttester)
	if !ok {
		return fmt.Errorf("an SEV-SNP VMPL (%d) is set, but this machine's attester is %s, not SEV-SNP; leave the VMPL out", *vmpl, a.Name())
	}
	return hw.SetVMPL(*vmpl)
}

func describeErrors(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	return "; failed to open: " + errors.Join(errs...).Error()
}

// rootFile is the development ARK file that snp.Emulator.Save writes.
const rootFile = "ark.pem"

func openEmulator(o AttesterOptions) (*Selection, error) {
	sel, err := openSNPEmulator(o)
	if err != nil || o.EmulatedGPUs <= 0 {
		return sel, err
	}
	if sel.GPUs, err = OpenGPUEmulator(o.EmulatorDir, o.EmulatedGPUs); err != nil {
		return nil, err
	}
	return sel, nil
}

func openSNPEmulator(o AttesterOptions) (*Selection, error) {
	if o.EmulatorDir == "" {
		e, err := snp.NewEmulator(o.Emulator)
		if err != nil {
			return nil, err
		}
		return &Selection{Attester: e, Emulated: true, Emulator: e}, nil
	}
	root := filepath.Join(o.EmulatorDir, rootFile)
	if _, err := os.Stat(root); err == nil {
		e, err := snp.LoadEmulator(o.EmulatorDir)
		if err != nil {
			return nil, err
		}
		return &Selection{Attester: e, Emulated: true, Emulator: e, RootPath: root}, nil
	}
	e, err := snp.NewEmulator(o.Emulator)
	if err != nil {
		return nil, err
	}
	if err := e.Save(o.EmulatorDir); err != nil {
		return nil, err
	}
	return &Selection{Attester: e, Emulated: true, Emulator: e, RootPath: root}, nil
}
