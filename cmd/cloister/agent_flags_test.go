package main

import (
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
