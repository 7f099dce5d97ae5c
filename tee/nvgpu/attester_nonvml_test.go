//go:build !nvml

package nvgpu

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestNVMLStubReturnsNotBuilt(t *testing.T) {
	if NVMLSupported {
		t.Error("NVMLSupported is true in a build without the nvml tag")
	}
	a, err := OpenNVML()
	if !errors.Is(err, ErrNVMLNotBuilt) {
		t.Errorf("OpenNVML error %v, expected ErrNVMLNotBuilt", err)
	}
	if a != nil {
		t.Error("OpenNVML returned an attester")
	}
	if !strings.Contains(err.Error(), "this binary was built without NVML support; rebuild with -tags nvml") {
		t.Errorf("error %q does not say how to rebuild", err)
	}

	var stub NVMLAttester
	if _, err := stub.Attest(context.Background(), nil); !errors.Is(err, ErrNVMLNotBuilt) {
		t.Errorf("Attest error %v, expected ErrNVMLNotBuilt", err)
	}
	if _, err := stub.SetReady(); !errors.Is(err, ErrNVMLNotBuilt) {
		t.Errorf("SetReady error %v, expected ErrNVMLNotBuilt", err)
	}
	if _, err := stub.SetNotReady(); !errors.Is(err, ErrNVMLNotBuilt) {
		t.Errorf("SetNotReady error %v, expected ErrNVMLNotBuilt", err)
	}
	if stub.Name() != "nvidia-gpu" {
		t.Errorf("name %q, expected nvidia-gpu", stub.Name())
	}
}
