package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/ratls"
)

func TestAgentRejectsCertLifetimeOutOfRange(t *testing.T) {
	for _, lifetime := range []string{"2s", "-1h", "48h"} {
		_, err := runCloister(t, "agent", "--emulated", "--cert-lifetime", lifetime, "--", "true")
		if code := exitCode(t, err); code != exitUsage {
			t.Errorf("--cert-lifetime %s: exit code %d (%v), want %d", lifetime, code, err, exitUsage)
		}
		if err == nil || !strings.Contains(err.Error(), "use 2m to 24h") {
			t.Errorf("--cert-lifetime %s: error %v, want one that names the range", lifetime, err)
		}
	}
}

func TestAgentVerifyClientsNeedsMeasurement(t *testing.T) {
	_, err := runCloister(t, "agent", "--emulated", "--upstream", "127.0.0.1:9000", "--verify-clients", "--client-allow-emulated", "--", "true")
	if code := exitCode(t, err); code != exitUsage {
		t.Errorf("exit code %d (%v), want %d", code, err, exitUsage)
	}
	if err == nil || !strings.Contains(err.Error(), "pass --client-measurement HEX") {
		t.Errorf("error %v, want one that names --client-measurement", err)
	}
}

// The clients' policy flags are checked, and named, before the agent
// starts.
func TestAgentClientPolicyFlags(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, filepath.Join(dir, "bad.rego"), "package cloister.appraisal\ndeny contains x if {")
	base := []string{"agent", "--emulated", "--upstream", "127.0.0.1:9000", "--verify-clients", "--client-allow-emulated"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--client-measurement", strings.Repeat("00", 48), "--client-reference-value", "tdx.rtmr1=00"}, "--client-reference-value needs --client-policy"},
		{[]string{"--client-policy", bad}, "--client-policy " + bad},
		{[]string{"--client-policy", filepath.Join(dir, "missing.rego")}, "--client-policy: "},
	} {
		_, err := runCloister(t, append(append(append([]string{}, base...), tc.args...), "--", "true")...)
		if code := exitCode(t, err); code != exitUsage {
			t.Errorf("%v: exit code %d (%v), want %d", tc.args, code, err, exitUsage)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one that contains %q", tc.args, err, tc.want)
		}
	}
}

func TestAgentRejectsSecretFileClash(t *testing.T) {
	_, err := runCloister(t, "agent", "--emulated", "--kbs", "http://127.0.0.1:8080",
		"--secret", "a/b/model", "--secret", "c/d/other=model", "--", "true")
	if code := exitCode(t, err); code != exitUsage {
		t.Errorf("exit code %d (%v), want %d", code, err, exitUsage)
	}
	if err == nil || !strings.Contains(err.Error(), "file name model is already used by --secret a/b/model") {
		t.Errorf("error %v, want one that names both flags", err)
	}
}

func TestAgentRejectsNonPositiveClientMaxAge(t *testing.T) {
	_, err := runCloister(t, "agent", "--emulated", "--upstream", "127.0.0.1:9000", "--verify-clients",
		"--client-measurement", strings.Repeat("00", 48), "--client-max-age", "0s", "--", "true")
	if err == nil || !strings.Contains(err.Error(), "--client-max-age 0s is not positive") {
		t.Errorf("error %v, want one that names --client-max-age", err)
	}
}

func TestAgentChallengeClientsNeedsVerifyClients(t *testing.T) {
	_, err := runCloister(t, "agent", "--emulated", "--upstream", "127.0.0.1:9000", "--challenge-clients", "--", "true")
	if code := exitCode(t, err); code != exitUsage {
		t.Errorf("exit code %d (%v), want %d", code, err, exitUsage)
	}
	if err == nil || !strings.Contains(err.Error(), "--challenge-clients needs --verify-clients") {
		t.Errorf("error %v, want one that names --verify-clients", err)
	}
}

// parseClientVerifyOptions parses args as cloister agent flags and returns
// the verification options for the clients' evidence.
func parseClientVerifyOptions(t *testing.T, args ...string) ratls.VerifyOptions {
	t.Helper()
	f := &agentFlags{}
	if err := agentCommand(f).ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	o, err := clientVerifyOptions(*f)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// The clients' TCB status, minimum TCB evaluation data number and maximum
// VMPL reach the appraisal of each client's evidence and the input.config
// of --client-policy.
func TestAgentClientAppraisalFlags(t *testing.T) {
	policyFile := writeFile(t, filepath.Join(t.TempDir(), "snp.rego"), policy.DefaultAttestation(attest.TEESNP).Text)
	o := parseClientVerifyOptions(t,
		"--client-measurement", strings.Repeat("00", 48),
		"--client-tcb-status", attest.TCBOutOfDate, "--client-tcb-status", attest.TCBUpToDate,
		"--client-min-tcb-evaluation-data-number", "17",
		"--client-max-vmpl", "0",
		"--client-policy", policyFile,
	)
	if got := o.Appraise.TCBStatuses; !slices.Equal(got, []string{attest.TCBOutOfDate, attest.TCBUpToDate}) {
		t.Errorf("TCB statuses %v, want OutOfDate and UpToDate", got)
	}
	if got := o.Appraise.MinTCBEvaluationDataNumber; got != 17 {
		t.Errorf("minimum TCB evaluation data number %d, want 17", got)
	}
	if o.Appraise.MaxVMPL == nil || *o.Appraise.MaxVMPL != 0 {
		t.Errorf("maximum VMPL %v, want 0", o.Appraise.MaxVMPL)
	}

	// A client's SEV-SNP report from VMPL 1 is rejected by the appraisal
	// and by the default policy given as --client-policy.
	claims := &attest.Claims{TEE: attest.TEESNP, Measurement: make(attest.Hex, 48), Attributes: map[string]any{"vmpl": uint32(1)}}
	d := appraise.Appraise(claims, o.Appraise)
	if d.Accepted || d.Reasons[0].Rule != "max-vmpl" {
		t.Errorf("appraisal %+v, want a max-vmpl rejection", d)
	}
	d, err := o.Policy(context.Background(), claims)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(d.Reasons, func(r appraise.Reason) bool { return r.Rule == "max-vmpl" }) {
		t.Errorf("policy reasons %+v, want a max-vmpl reason", d.Reasons)
	}
}

// Without the flags the clients' appraisal keeps its defaults.
func TestAgentClientAppraisalDefaults(t *testing.T) {
	o := parseClientVerifyOptions(t, "--client-measurement", strings.Repeat("00", 48))
	if o.Appraise.TCBStatuses != nil {
		t.Errorf("TCB statuses %v, want none (the defaults)", o.Appraise.TCBStatuses)
	}
	if o.Appraise.MinTCBEvaluationDataNumber != 0 {
		t.Errorf("minimum TCB evaluation data number %d, want 0", o.Appraise.MinTCBEvaluationDataNumber)
	}
	if o.Appraise.MaxVMPL != nil {
		t.Errorf("maximum VMPL %d, want none", *o.Appraise.MaxVMPL)
	}
}

func TestAgentRejectsInvalidClientMaxVMPL(t *testing.T) {
	_, err := runCloister(t, "agent", "--emulated", "--upstream", "127.0.0.1:9000", "--verify-clients",
		"--client-measurement", strings.Repeat("00", 48), "--client-max-vmpl", "4", "--", "true")
	if code := exitCode(t, err); code != exitUsage {
		t.Errorf("exit code %d (%v), want %d", code, err, exitUsage)
	}
	if err == nil || !strings.Contains(err.Error(), `invalid --client-max-vmpl "4": use 0, 1, 2 or 3`) {
		t.Errorf("error %v, want one that names --client-max-vmpl", err)
	}
}

// Each verification option that cloister connect offers for its peer has
// a --client- flag in mutual mode, which sets the same option for the
// clients' evidence.
func TestAgentClientPeerFlags(t *testing.T) {
	o := parseClientVerifyOptions(t,
		"--client-measurement", strings.Repeat("00", 48),
		"--client-host-data", "ab",
		"--client-chip-id", "cd",
		"--client-min-tcb", "bootloader=4,snp=22",
		"--client-allow-undetermined-tcb",
		"--client-allow-undated",
	)
	if got := o.Appraise.HostData; !slices.Equal(got, attest.Hex{0xab}) {
		t.Errorf("host data %x, want ab", got)
	}
	if got := o.Appraise.ChipID; !slices.Equal(got, attest.Hex{0xcd}) {
		t.Errorf("chip ID %x, want cd", got)
	}
	if got := o.Appraise.MinTCB["bootloader"]; got != 4 {
		t.Errorf("minimum bootloader SVN %d, want 4", got)
	}
	if got := o.Appraise.MinTCB["snp"]; got != 22 {
		t.Errorf("minimum SNP firmware SVN %d, want 22", got)
	}
	if len(o.Appraise.MinTCB) != 2 {
		t.Errorf("minimum TCB %v, want bootloader and snp only", o.Appraise.MinTCB)
	}
	if !o.Appraise.AllowUndeterminedTCB {
		t.Error("undetermined TCB status not allowed")
	}
	if !o.AllowUndated {
		t.Error("undated certificates not allowed")
	}

	// A client whose host data differs is rejected.
	claims := &attest.Claims{TEE: attest.TEESNP, Measurement: make(attest.Hex, 48), HostData: attest.Hex{0xff}, ChipID: attest.Hex{0xcd}}
	if d := appraise.Appraise(claims, o.Appraise); d.Accepted {
		t.Error("appraisal accepted host data ff, want a rejection for host data ab")
	}
}

// Without the flags the clients' peer options keep the strict defaults.
func TestAgentClientPeerDefaults(t *testing.T) {
	o := parseClientVerifyOptions(t, "--client-measurement", strings.Repeat("00", 48))
	if o.Appraise.HostData != nil {
		t.Errorf("host data %x, want none", o.Appraise.HostData)
	}
	if o.Appraise.ChipID != nil {
		t.Errorf("chip ID %x, want none", o.Appraise.ChipID)
	}
	if len(o.Appraise.MinTCB) != 0 {
		t.Errorf("minimum TCB %v, want none", o.Appraise.MinTCB)
	}
	if o.Appraise.AllowUndeterminedTCB {
		t.Error("undetermined TCB status allowed by default")
	}
	if o.AllowUndated {
		t.Error("undated certificates allowed by default")
	}
}

// Invalid --client-host-data, --client-chip-id and --client-min-tcb values
// are usage errors that name the flag.
func TestAgentRejectsInvalidClientPeerFlags(t *testing.T) {
	base := []string{"agent", "--emulated", "--upstream", "127.0.0.1:9000", "--verify-clients", "--client-measurement", strings.Repeat("00", 48)}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--client-host-data", "xyz"}, "--client-host-data: "},
		{[]string{"--client-chip-id", "xyz"}, "--client-chip-id: "},
		{[]string{"--client-min-tcb", "snp"}, "--client-min-tcb: "},
	} {
		_, err := runCloister(t, append(append(append([]string{}, base...), tc.args...), "--", "true")...)
		if code := exitCode(t, err); code != exitUsage {
			t.Errorf("%v: exit code %d (%v), want %d", tc.args, code, err, exitUsage)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one that contains %q", tc.args, err, tc.want)
		}
	}
}
