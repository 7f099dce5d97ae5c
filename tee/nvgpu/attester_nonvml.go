//go:build !nvml

package nvgpu

import (
	"context"

	"github.com/cloister-dev/cloister/attest"
)

// NVMLSupported is false in a binary built without the nvml build tag.
const NVMLSupported = false

// NVMLAttester would collect the evidence of the machine's NVIDIA GPUs
// through NVML. This build has no NVML support (ErrNVMLNotBuilt), so its
// methods only return that error. The build tag nvml replaces it with the
// working attester.
type NVMLAttester struct{}

// OpenNVML returns ErrNVMLNotBuilt.
func OpenNVML() (*NVMLAttester, error) { return nil, ErrNVMLNotBuilt }

// Name returns "nvidia-gpu".
func (*NVMLAttester) Name() string { return string(attest.TEENVGPU) }

// GPUCount returns 0.
func (*NVMLAttester) GPUCount() int { return 0 }

// Ready returns false.
func (*NVMLAttester) Ready() bool { return false }

// SetReady returns ErrNVMLNotBuilt.
func (*NVMLAttester) SetReady() (bool, error) { return false, ErrNVMLNotBuilt }

// SetNotReady returns ErrNVMLNotBuilt.
func (*NVMLAttester) SetNotReady() (bool, error) { return false, ErrNVMLNotBuilt }

// Attest returns ErrNVMLNotBuilt.
func (*NVMLAttester) Attest(context.Context, []byte) (*attest.Evidence, error) {
	return nil, ErrNVMLNotBuilt
}
