package server

import (
	"bytes"
	"context"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// gpuRIMPolicy is a resource policy that releases a secret only to an
// affirmed CPU with an affirmed GPU whose measurements matched its RIMs.
const gpuRIMPolicy = `package gpu_required

default allow := false

allow if {
	input.token.submods.cpu0["ear.status"] == "affirming"
	gpu := input.token.submods.gpu0
	gpu["ear.status"] == "affirming"
	some c in gpu["ear.veraison.annotated-evidence"].nvidia.checks
	c.name == "rim"
	c.result == "passed"
}
`

// rimRequiredPolicy is an nvidia-gpu attestation policy that rejects GPU
// evidence whose rim check did not pass, also when reference values for the
// GPU's measurements are registered, which the default policy accepts
// instead.
const rimRequiredPolicy = `package rim_required

deny contains {"rule": "rim", "claim": "checks.rim", "value": c.result, "expected": "passed", "message": "the GPU's measurements must match its RIMs"} if {
	some c in input.claims.checks
	c.name == "rim"
	c.result != "passed"
}
`

// otherNonceGPU is an emulated GPU whose reports carry a fixed nonce
// instead of the device runtime data it is given.
type otherNonceGPU struct{ *nvgpu.Emulator }

func (g otherNonceGPU) Attest(ctx context.Context, _ []byte) (*attest.Evidence, error) {
	return g.Emulator.Attest(ctx, bytes.Repeat([]byte{0x5a}, 32))
}

// gpuService starts a service that trusts the emulated GPU's development
// roots and, with rims set, has its RIMs as nvidia-gpu collateral.
func gpuService(t *testing.T, b backend, gpu *nvgpu.Emulator, rims bool) *testService {
	t.Helper()
	return startService(t, b, gpuServiceOptions(t, gpu, rims))
}

// gpuServiceOptions returns the options of gpuService.
func gpuServiceOptions(t *testing.T, gpu *nvgpu.Emulator, rims bool) serviceOptions {
	t.Helper()
	opts := serviceOptions{allowEmulated: true, anchors: gpu.Roots()}
	if rims {
		set, err := gpu.Collateral()
		if err != nil {
			t.Fatal(err)
		}
		set.ScopeTo([]string{string(attest.TEENVGPU)})
		opts.collateral = set
	}
	return opts
}

// newGPUEmulator returns an emulator of gpus GPUs.
func newGPUEmulator(t *testing.T, gpus int) *nvgpu.Emulator {
	t.Helper()
	gpu, err := nvgpu.NewEmulator(nvgpu.EmulatorOptions{GPUs: gpus})
	if err != nil {
		t.Fatal(err)
	}
	return gpu
}

// gpuSubmod returns the claims of the nvidia evidence in a token's gpu0
// submodule, read without checking the signature, or nil.
func gpuSubmod(t *testing.T, token string) map[string]any {
	t.Helper()
	gpu0 := unverifiedSubmod(t, token, "gpu0")
	annotated, _ := gpu0["ear.veraison.annotated-evidence"].(map[string]any)
	claims, _ := annotated["nvidia"].(map[string]any)
	return claims
}

// checkResultIn returns the result of the check name in claims, or "".
func checkResultIn(claims map[string]any, name string) string {
	checks, _ := claims["checks"].([]any)
	for _, c := range checks {
		m, _ := c.(map[string]any)
		if m["name"] == name {
			result, _ := m["result"].(string)
			return result
		}
	}
	return ""
}

// An emulated SEV-SNP guest with emulated GPUs attests over HTTP on
// loopback with the GPUs' evidence in additional_evidence. The token has a
// gpu0 submodule with the rim check passed, and a resource policy that
// requires it releases the secret. The same guest without the GPUs is
// denied, and GPU evidence bound to another nonce is rejected.
func TestCompositeGPUAttestation(t *testing.T) {
	gpu := newGPUEmulator(t, 2)
	tests := []struct {
		name    string
		devices []attest.Attester
		// attestErr is set when the attestation itself must fail.
		attestErr bool
		release   bool
	}{
		{name: "CPU and GPUs", devices: []attest.Attester{gpu}, release: true},
		{name: "CPU only", devices: nil, release: false},
		{name: "GPU bound to another nonce", devices: []attest.Attester{otherNonceGPU{gpu}}, attestErr: true},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		// The GPUs are appraised by the default nvidia-gpu policy.
		ts := gpuService(t, b, gpu, true)
		ctx := context.Background()
		if _, err := ts.store.PutPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName, gpuRIMPolicy); err != nil {
			t.Fatal(err)
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := ts.newClient(t, "good")
				c.Devices = tc.devices
				token, err := c.Attest(context.Background())
				if tc.attestErr {
					wantProblem(t, err, kbs.ProblemAttestationError, 401)
					return
				}
				if err != nil {
					t.Fatalf("Attest: %v", err)
				}

				statuses := submodStatuses(t, token)
				if statuses["cpu0"] != ear.StatusAffirming {
					t.Errorf("cpu0 ear.status %s, expected affirming", statuses["cpu0"])
				}
				claims := gpuSubmod(t, token)
				if tc.devices == nil {
					if claims != nil {
						t.Errorf("token without GPU evidence has GPU claims %v", claims)
					}
				} else {
					if statuses["gpu0"] != ear.StatusAffirming {
						t.Errorf("gpu0 ear.status %s, expected affirming", statuses["gpu0"])
					}
					if got := checkResultIn(claims, "rim"); got != string(attest.CheckPassed) {
						t.Errorf("gpu0 rim check %q, expected passed", got)
					}
					if claims["emulated"] != true {
						t.Errorf("gpu0 emulated %v, expected true", claims["emulated"])
					}
					if _, ok := claims["measurements"].(map[string]any)["gpu1/fwid"]; !ok {
						t.Error("gpu0 claims lack the second GPU's measurements")
					}
				}

				secret, err := c.Resource(context.Background(), testSecretPath)
				if tc.release {
					if err != nil {
						t.Fatalf("Resource: %v", err)
					}
					if !bytes.Equal(secret, testSecret) {
						t.Errorf("secret %q, expected %q", secret, testSecret)
					}
					return
				}
				wantProblem(t, err, kbs.ProblemPolicyDeny, 401)
			})
		}
	})
}

// The default nvidia-gpu attestation policy rejects the GPU of a service
// that has no RIMs and no reference values for the GPU's measurements, and
// so does a policy that requires the rim check. The rejected GPU blocks the
// release even under a resource policy that allows everything.
func TestGPURIMRequiredByAttestationPolicy(t *testing.T) {
	gpu := newGPUEmulator(t, 1)
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range []struct {
			name   string
			rims   bool
			policy string
		}{
			{name: "default policy with RIMs", rims: true},
			{name: "default policy without RIMs", rims: false},
			{name: "rim policy with RIMs", rims: true, policy: rimRequiredPolicy},
			{name: "rim policy without RIMs", rims: false, policy: rimRequiredPolicy},
		} {
			rims := tc.rims
			t.Run(tc.name, func(t *testing.T) {
				ts := gpuService(t, b, gpu, rims)
				ctx := context.Background()
				if tc.policy != "" {
					if _, err := ts.store.PutPolicy(ctx, store.PolicyAttestation, string(attest.TEENVGPU), tc.policy); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := ts.store.PutPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName, "package permissive\nallow := true\n"); err != nil {
					t.Fatal(err)
				}

				c := ts.newClient(t, "good")
				c.Devices = []attest.Attester{gpu}
				token, err := c.Attest(ctx)
				if err != nil {
					t.Fatalf("Attest: %v", err)
				}
				wantStatus := map[bool]ear.Status{true: ear.StatusAffirming, false: ear.StatusContraindicated}[rims]
				if got := submodStatuses(t, token)["gpu0"]; got != wantStatus {
					t.Errorf("gpu0 ear.status %s, expected %s", got, wantStatus)
				}

				_, err = c.Resource(ctx, testSecretPath)
				if rims && err != nil {
					t.Errorf("Resource with RIMs: %v", err)
				}
				if !rims {
					wantProblem(t, err, kbs.ProblemPolicyDeny, 401)
				}
			})
		}
	})
}
