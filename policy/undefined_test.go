package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// A policy that does not define its rule must be refused at upload and fail
// closed at evaluation, never read as "nothing to deny".
func TestUndefinedRuleFailsClosed(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	noDeny := Module{Name: "empty", Text: "package cloister.empty\n\nx := 1\n"}

	if err := e.Check(ctx, noDeny, "deny"); err == nil || !strings.Contains(err.Error(), "defines no deny rule") {
		t.Errorf("Check of a policy without deny: %v", err)
	}
	if err := e.Check(ctx, Module{Name: "r", Text: "package r\n"}, "allow"); err == nil {
		t.Error("Check accepted a resource policy without allow")
	}
	withDeny := Module{Name: "ok", Text: "package ok\n\ndeny contains r if { false; r := {} }\n"}
	if err := e.Check(ctx, withDeny, "deny"); err != nil {
		t.Errorf("Check of a policy with deny: %v", err)
	}

	d, err := e.Appraise(ctx, noDeny, &attest.Claims{TEE: attest.TEESNP}, Config{}, nil)
	if err == nil {
		t.Fatalf("Appraise with an undefined deny accepted: %+v", d)
	}
	if !strings.Contains(err.Error(), "undefined") {
		t.Errorf("error %q does not say deny is undefined", err)
	}
}
