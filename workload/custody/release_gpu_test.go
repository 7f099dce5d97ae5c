package custody

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/workload"
)

// gpuAppraisal returns a gpu0 submodule of status whose nvidia claims
// have these checks, given as name and result pairs.
func gpuAppraisal(status ear.Status, checks ...string) *ear.Appraisal {
	var list []any
	for i := 0; i+1 < len(checks); i += 2 {
		list = append(list, map[string]any{"name": checks[i], "result": checks[i+1]})
	}
	claims := map[string]any{"tee": string(attest.TEENVGPU), "emulated": true, "checks": list}
	return &ear.Appraisal{Status: status, AnnotatedEvidence: map[string]any{"nvidia": claims}}
}

// A release rule with RequireGPU allows only a token whose gpu0 submodule
// is affirming and whose rim check passed. The reasons of a denial name
// the GPU claim with its value and the expected value. A rule without
// RequireGPU in the same policy still needs no GPU.
func TestReleasePolicyRequireGPU(t *testing.T) {
	const modelPath, sealingPath, otherPath = "models/xor/key", "custody/sealing/key", "other/secret/key"
	measurement := bytes.Repeat([]byte{0x11}, 48)
	digest := workload.Digest{0xab}
	rules := []Release{
		{Path: modelPath, Measurement: measurement, Manifest: digest, RequireGPU: true},
		{Path: sealingPath, Measurement: measurement, Manifest: digest},
	}
	claims := &ear.KeyClaims{TEE: string(attest.TEESNP), Measurement: hex.EncodeToString(measurement), HostData: hex.EncodeToString(digest[:])}

	const statusClaim = "submods.gpu0.ear.status"
	const rimClaim = "submods.gpu0.ear.veraison.annotated-evidence.nvidia.checks.rim"
	tests := []struct {
		name        string
		others      bool
		claims      *ear.KeyClaims
		gpu         *ear.Appraisal
		path        string
		wantAllowed bool
		wantReasons []appraise.Reason
		// wantMessage is the start of the first reason's message.
		wantMessage string
	}{
		{name: "affirming GPU rim passed", gpu: gpuAppraisal(ear.StatusAffirming, "signature", "passed", "rim", "passed", "ocsp", "not-checked"),
			path: modelPath, wantAllowed: true},
		{
			name:        "no gpu0",
			path:        modelPath,
			wantReasons: []appraise.Reason{{Rule: "gpu_status", Claim: statusClaim, Value: "", Expected: "affirming"}},
			wantMessage: "the token has no GPU appraisal, and the release rule of models/xor/key requires attested GPUs",
		},
		{
			name:        "gpu0 not affirming",
			gpu:         gpuAppraisal(ear.StatusContraindicated, "rim", "passed"),
			path:        modelPath,
			wantReasons: []appraise.Reason{{Rule: "gpu_status", Claim: statusClaim, Value: "contraindicated", Expected: "affirming"}},
			wantMessage: "the GPUs' attestation result is not affirming",
		},
		{
			name:        "gpu0 warning",
			gpu:         gpuAppraisal(ear.StatusWarning, "rim", "passed"),
			path:        modelPath,
			wantReasons: []appraise.Reason{{Rule: "gpu_status", Claim: statusClaim, Value: "warning", Expected: "affirming"}},
		},
		{
			name:        "rim not checked",
			gpu:         gpuAppraisal(ear.StatusAffirming, "rim", "not-checked"),
			path:        modelPath,
			wantReasons: []appraise.Reason{{Rule: "gpu_rim", Claim: rimClaim, Value: "not-checked", Expected: "passed"}},
			wantMessage: "the GPUs' measurements were not compared with NVIDIA's signed RIMs, and the release rule of models/xor/key requires",
		},
		{
			name:        "rim failed",
			gpu:         gpuAppraisal(ear.StatusAffirming, "rim", "failed"),
			path:        modelPath,
			wantReasons: []appraise.Reason{{Rule: "gpu_rim", Claim: rimClaim, Value: "failed", Expected: "passed"}},
			wantMessage: "the GPUs' measurements do not match their RIMs",
		},
		{
			name:        "no rim check",
			gpu:         gpuAppraisal(ear.StatusAffirming, "signature", "passed"),
			path:        modelPath,
			wantReasons: []appraise.Reason{{Rule: "gpu_rim", Claim: rimClaim, Value: "", Expected: "passed"}},
		},
		{
			name:        "rim passed and failed",
			gpu:         gpuAppraisal(ear.StatusAffirming, "rim", "passed", "rim", "failed"),
			path:        modelPath,
			wantReasons: []appraise.Reason{{Rule: "gpu_rim", Claim: rimClaim, Value: "failed, passed", Expected: "passed"}},
		},
		{
			name: "gpu0 not affirming and rim not checked",
			gpu:  gpuAppraisal(ear.StatusContraindicated, "rim", "not-checked"),
			path: modelPath,
			wantReasons: []appraise.Reason{
				{Rule: "gpu_rim", Claim: rimClaim, Value: "not-checked", Expected: "passed"},
				{Rule: "gpu_status", Claim: statusClaim, Value: "contraindicated", Expected: "affirming"},
			},
		},
		{
			name:        "GPU without the CPU rule",
			claims:      &ear.KeyClaims{TEE: string(attest.TEESNP), Measurement: "22", HostData: hex.EncodeToString(digest[:])},
			gpu:         gpuAppraisal(ear.StatusAffirming, "rim", "passed"),
			path:        modelPath,
			wantReasons: []appraise.Reason{{Rule: "measurement", Claim: "submods.cpu0.cloister.key-claims.measurement", Value: "22", Expected: hex.EncodeToString(measurement)}},
		},
		{name: "rule without GPU", path: sealingPath, wantAllowed: true},
		{name: "rule without GPU rim not checked", gpu: gpuAppraisal(ear.StatusAffirming, "rim", "not-checked"), path: sealingPath, wantAllowed: true},
		{name: "path without rule with others", others: true, path: otherPath, wantAllowed: true},
		{
			name:        "path without rule",
			path:        otherPath,
			wantReasons: []appraise.Reason{{Rule: "resource", Claim: "resource.path", Value: otherPath, Expected: sealingPath + ", " + modelPath}},
		},
	}

	engine := policy.NewEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenClaims := tt.claims
			if tokenClaims == nil {
				tokenClaims = claims
			}

			d := releaseDecision(t, engine, rules, tt.others, releaseToken(t, ear.StatusAffirming, tokenClaims, tt.gpu), tt.path)
			checkDecision(t, d, tt.wantAllowed, tt.wantReasons)
			if tt.wantMessage != "" && !strings.HasPrefix(d.Reasons[0].Message, tt.wantMessage) {
				t.Errorf("message = %q, want it to start with %q", d.Reasons[0].Message, tt.wantMessage)
			}
		})
	}
}

// A policy whose rules require no GPU has no GPU rule, so the default
// output is the same as before RequireGPU existed.
func TestReleasePolicyOmitsGPURules(t *testing.T) {
	text, err := ReleasePolicy([]Release{{Path: "models/xor/key", Measurement: bytes.Repeat([]byte{0x11}, 48), Manifest: workload.Digest{0xab}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "gpu") {
		t.Errorf("policy without RequireGPU mentions GPUs:\n%s", text)
	}
}
