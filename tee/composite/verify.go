package composite

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// TEE is the name of composite evidence in claims and on the command line.
const TEE = attest.TEEComposite

func init() { attest.Register(&Verifier{}) }

// Verifier verifies composite CPU and GPU evidence. The zero value is ready
// to use and safe for concurrent use.
type Verifier struct{}

// Name returns "composite".
func (*Verifier) Name() string { return string(TEE) }

// Detect reports whether data is a JSON object with "cpu" and "gpus".
func (*Verifier) Detect(data []byte) bool { return detect(data) }

// Verify verifies the CPU part with the verifier its format names (or
// attest.Detect finds), then each GPU with the nvidia-gpu verifier, all
// with opts, and requires every GPU nonce to equal the binding value from
// the CPU report data. Every part must pass. A CPU part that fails returns
// nil claims. A GPU that fails after its signature and chain verified
// (a binding failure, for example) returns the error together with the
// claims of the CPU and of the GPUs up to that one. The attest.Verifier
// contract requires this, so that the rejection shows which GPU check failed.
func (v *Verifier) Verify(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	doc, err := Parse(ev.Data)
	if err != nil {
		return nil, err
	}
	if len(ev.Aux) > 0 {
		return nil, attest.Malformed("aux", "composite evidence carries its auxiliary data inside its parts, not beside them", nil).
			WithFix("put the CPU's auxiliary data, such as the SEV-SNP certificate table, under cpu.aux in base64")
	}

	cpu, err := verifyCPU(ctx, doc.CPU, opts)
	if err != nil {
		return nil, err
	}
	binding, err := Binding(cpu.ReportData)
	if err != nil {
		return nil, err
	}

	gpuVerifier, ok := attest.Lookup(string(attest.TEENVGPU))
	if !ok {
		return nil, attest.Errorf(attest.ErrUnsupported, "gpus", "the nvidia-gpu verifier is not registered").
			WithFix("build Cloister with the tee/nvgpu package")
	}
	gpuOpts := opts
	gpuOpts.Nonce = binding
	gpus := make([]*attest.Claims, len(doc.GPUs))
	for i, data := range doc.GPUs {
		gpu, err := gpuVerifier.Verify(ctx, attest.Evidence{Format: string(attest.TEENVGPU), Data: data}, gpuOpts)
		if err != nil {
			if gpu == nil {
				return nil, gpuError(i, err)
			}
			if errors.Is(err, attest.ErrBinding) {
				return bindingFailure(cpu, gpus[:i], i, gpu)
			}
			return merge(cpu, append(gpus[:i], gpu)), gpuError(i, err)
		}
		gpus[i] = gpu
	}

	claims := merge(cpu, gpus)
	claims.Pass("gpu-nonce-binding")
	return claims, nil
}

// verifyCPU verifies the CPU part, rejecting formats that are not a CPU
// TEE.
func verifyCPU(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	if ev.Format == "" {
		v, err := attest.Detect(ev.Data)
		if err != nil {
			return nil, cpuError(err)
		}
		ev.Format = v.Name()
	}
	switch ev.Format {
	case string(TEE), string(attest.TEENVGPU):
		return nil, attest.Errorf(attest.ErrUnsupported, "cpu.format", "%q evidence cannot be the CPU part of composite evidence", ev.Format).
			WithFix("put a CPU report or quote (snp, tdx, sgx) under \"cpu\" and the GPUs under \"gpus\"")
	}
	claims, err := attest.Verify(ctx, ev, opts)
	if err != nil {
		return nil, cpuError(err)
	}
	return claims, nil
}

// bindingFailure returns the claims proven so far, with the failed nonce
// check of GPU i, and an ErrBinding error that names the CPU report data.
func bindingFailure(cpu *attest.Claims, verified []*attest.Claims, i int, gpu *attest.Claims) (*attest.Claims, error) {
	claims := merge(cpu, append(verified, gpu))
	claims.Fail("gpu-nonce-binding", fmt.Sprintf("GPU %d's nonce differs from the first %d bytes of the CPU report data", i, BindingSize))
	return claims, attest.Errorf(attest.ErrBinding, fmt.Sprintf("gpus[%d] nonce", i),
		"the GPU's SPDM nonce is not bound to the CPU report: it differs from the first %d bytes of the CPU report data", BindingSize).
		WithValues(gpu.Nonce.String(), attest.Hex(cpu.ReportData[:BindingSize]).String()).
		WithFix("collect the GPU reports with the nonce that the CPU report data starts with, in the same attestation")
}

// cpuError names the CPU part in err.
func cpuError(err error) error { return prefixed("cpu", err) }

// gpuError names GPU i in err.
func gpuError(i int, err error) error { return prefixed(fmt.Sprintf("gpus[%d]", i), err) }

// prefixed returns err with its field under part, keeping its kind.
func prefixed(part string, err error) error {
	if e, ok := err.(*attest.Error); ok {
		c := *e
		c.Field = part + ": " + e.Field
		if e.Field == "" {
			c.Field = part
		}
		return &c
	}
	return fmt.Errorf("%s: %w", part, err)
}
