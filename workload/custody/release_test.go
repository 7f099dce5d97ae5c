package custody

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/server"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/workload"
)

// releaseToken returns the claims of an EAR token, as JSON, whose cpu0
// submodule has this status and these key claims and whose gpu0 submodule
// is gpu. Nil claims give a token without key claims, and a nil gpu gives
// a token without gpu0.
func releaseToken(t *testing.T, status ear.Status, claims *ear.KeyClaims, gpu *ear.Appraisal) []byte {
	t.Helper()
	result := ear.Result{Submods: map[string]*ear.Appraisal{"cpu0": {Status: status, KeyClaims: claims}}}
	if gpu != nil {
		result.Submods["gpu0"] = gpu
	}
	raw, err := json.Marshal(result)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The generated release policy, evaluated by the broker's policy engine,
// allows only the workload that a rule names, and its reasons name each
// check that a denied request failed, with the claim's value and the
// expected value.
func TestReleasePolicyDecisions(t *testing.T) {
	const sealingPath, modelPath, otherPath = "custody/sealing/key", "models/xor/key", "other/secret/key"
	measurement := bytes.Repeat([]byte{0x11}, 48)
	otherMeasurement := bytes.Repeat([]byte{0x22}, 48)
	digest := workload.Digest{0xab}
	otherDigest := workload.Digest{0xcd}
	rules := []Release{
		{Path: sealingPath, Measurement: measurement, Manifest: digest},
		{Path: modelPath, Measurement: measurement, Manifest: digest},
	}

	wantMeasurement := hex.EncodeToString(measurement)
	wantHostData := hex.EncodeToString(digest[:])
	claims := func(change func(c *ear.KeyClaims)) *ear.KeyClaims {
		c := &ear.KeyClaims{TEE: string(attest.TEESNP), Measurement: wantMeasurement, HostData: wantHostData}
		if change != nil {
			change(c)
		}
		return c
	}
	measurementReason := appraise.Reason{Rule: "measurement", Claim: "submods.cpu0.cloister.key-claims.measurement",
		Value: hex.EncodeToString(otherMeasurement), Expected: wantMeasurement}
	hostDataReason := appraise.Reason{Rule: "host_data", Claim: "submods.cpu0.cloister.key-claims.host_data",
		Value: hex.EncodeToString(otherDigest[:]), Expected: wantHostData}
	debugReason := appraise.Reason{Rule: "debug", Claim: "submods.cpu0.cloister.key-claims.debug", Value: "true", Expected: "false"}

	tests := []struct {
		name        string
		others      bool
		status      ear.Status
		claims      *ear.KeyClaims
		path        string
		wantAllowed bool
		wantReasons []appraise.Reason
	}{
		{name: "matching workload", claims: claims(nil), path: sealingPath, wantAllowed: true},
		{name: "matching workload second rule", claims: claims(nil), path: modelPath, wantAllowed: true},
		{
			name:        "wrong measurement",
			claims:      claims(func(c *ear.KeyClaims) { c.Measurement = hex.EncodeToString(otherMeasurement) }),
			path:        sealingPath,
			wantReasons: []appraise.Reason{measurementReason},
		},
		{
			name:        "wrong host data",
			claims:      claims(func(c *ear.KeyClaims) { c.HostData = hex.EncodeToString(otherDigest[:]) }),
			path:        sealingPath,
			wantReasons: []appraise.Reason{hostDataReason},
		},
		{
			name: "wrong measurement and host data",
			claims: claims(func(c *ear.KeyClaims) {
				c.Measurement = hex.EncodeToString(otherMeasurement)
				c.HostData = hex.EncodeToString(otherDigest[:])
			}),
			path:        sealingPath,
			wantReasons: []appraise.Reason{hostDataReason, measurementReason},
		},
		{
			name:        "wrong TEE",
			claims:      claims(func(c *ear.KeyClaims) { c.TEE = string(attest.TEETDX) }),
			path:        sealingPath,
			wantReasons: []appraise.Reason{{Rule: "tee", Claim: "submods.cpu0.cloister.key-claims.tee", Value: "tdx", Expected: "snp"}},
		},
		{
			name:        "debug on",
			claims:      claims(func(c *ear.KeyClaims) { c.Debug = true }),
			path:        sealingPath,
			wantReasons: []appraise.Reason{debugReason},
		},
		{
			name:        "warning status",
			status:      ear.StatusWarning,
			claims:      claims(nil),
			path:        sealingPath,
			wantReasons: []appraise.Reason{{Rule: "status", Claim: "submods.cpu0.ear.status", Value: "warning", Expected: "affirming"}},
		},
		{
			name: "no key claims",
			path: sealingPath,
			wantReasons: []appraise.Reason{
				{Rule: "debug", Claim: "submods.cpu0.cloister.key-claims.debug", Expected: "false"},
				{Rule: "host_data", Claim: "submods.cpu0.cloister.key-claims.host_data", Expected: wantHostData},
				{Rule: "measurement", Claim: "submods.cpu0.cloister.key-claims.measurement", Expected: wantMeasurement},
				{Rule: "tee", Claim: "submods.cpu0.cloister.key-claims.tee", Expected: "snp"},
			},
		},
		{
			name:        "path without rule",
			claims:      claims(nil),
			path:        otherPath,
			wantReasons: []appraise.Reason{{Rule: "resource", Claim: "resource.path", Value: otherPath, Expected: sealingPath + ", " + modelPath}},
		},
		{name: "path without rule with others", others: true, claims: claims(nil), path: otherPath, wantAllowed: true},
		{
			name:        "path without rule with others and debug on",
			others:      true,
			claims:      claims(func(c *ear.KeyClaims) { c.Debug = true }),
			path:        otherPath,
			wantReasons: []appraise.Reason{debugReason},
		},
		{
			name:        "wrong measurement with others",
			others:      true,
			claims:      claims(func(c *ear.KeyClaims) { c.Measurement = hex.EncodeToString(otherMeasurement) }),
			path:        sealingPath,
			wantReasons: []appraise.Reason{measurementReason},
		},
	}

	engine := policy.NewEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == "" {
				status = ear.StatusAffirming
			}

			d := releaseDecision(t, engine, rules, tt.others, releaseToken(t, status, tt.claims, nil), tt.path)
			checkDecision(t, d, tt.wantAllowed, tt.wantReasons)
		})
	}
}

// The message of a reason for a claim that does not match the release
// rule names the requested resource and the fix.
func TestReleasePolicyReasonMessage(t *testing.T) {
	digest := workload.Digest{0xab}
	text, err := ReleasePolicy([]Release{{Path: "custody/sealing/key", Measurement: bytes.Repeat([]byte{0x11}, 48), Manifest: digest}}, false)
	if err != nil {
		t.Fatal(err)
	}
	token := releaseToken(t, ear.StatusAffirming, &ear.KeyClaims{TEE: "snp", Measurement: strings.Repeat("11", 48), HostData: strings.Repeat("cd", 32)}, nil)
	d, err := policy.NewEngine().AuthorizeJSON(context.Background(), policy.Module{Name: "default", Text: text},
		token, policy.Resource{Path: "custody/sealing/key"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Reasons) != 1 {
		t.Fatalf("reasons = %+v, want one for host_data", d.Reasons)
	}
	want := "the host data is not the manifest digest that the release rule of custody/sealing/key names, so the TEE runs another manifest"
	if !strings.HasPrefix(d.Reasons[0].Message, want) {
		t.Errorf("message = %q, want it to start with %q", d.Reasons[0].Message, want)
	}
}

// releaseDecision generates the release policy of rules, checks that it is
// valid, and returns its decision for token and the resource path.
func releaseDecision(t *testing.T, engine *policy.Engine, rules []Release, others bool, token []byte, path string) policy.ResourceDecision {
	t.Helper()
	text, err := ReleasePolicy(rules, others)
	if err != nil {
		t.Fatal(err)
	}
	// cloister policy set stores only a policy that passes this check.
	if err := server.ValidatePolicy(store.PolicyResource, "default", text); err != nil {
		t.Fatalf("ValidatePolicy: %v\n%s", err, text)
	}

	d, err := engine.AuthorizeJSON(context.Background(), policy.Module{Name: "default", Text: text}, token, policy.Resource{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkDecision compares a resource policy decision with the expected one:
// whether it allows, and its reasons without their messages, each of which
// must be set.
func checkDecision(t *testing.T, d policy.ResourceDecision, wantAllowed bool, wantReasons []appraise.Reason) {
	t.Helper()
	if d.Allowed != wantAllowed {
		t.Errorf("allowed = %v, want %v", d.Allowed, wantAllowed)
	}
	if d.ReasonsErr != nil {
		t.Fatalf("reasons rule failed: %v", d.ReasonsErr)
	}
	if len(d.Reasons) != len(wantReasons) {
		t.Fatalf("reasons = %+v, want %d: %+v", d.Reasons, len(wantReasons), wantReasons)
	}
	for i, want := range wantReasons {
		got := d.Reasons[i]
		message := got.Message
		got.Message = ""
		if got != want {
			t.Errorf("reason %d = %+v, want %+v", i, got, want)
		}
		if message == "" {
			t.Errorf("reason %d (%s) has no message", i, want.Rule)
		}
	}
}
