package main

import (
	"path/filepath"
	"strings"
	"testing"
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
