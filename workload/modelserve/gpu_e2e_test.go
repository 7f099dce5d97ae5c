package modelserve

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// A workload with emulated GPUs gets the model key under a release rule
// that requires attested GPUs, and serves predictions. The key broker
// affirms the GPUs because it trusts their development roots and has
// their RIMs.
func TestModelServeWithGPUs(t *testing.T) {
	d := newDeploymentWithGPUs(t, 2)
	c := d.serve(t)

	out, err := c.Predict(context.Background(), [][]float64{{0, 1}, {1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 0}
	if len(out) != len(want) {
		t.Fatalf("got %d predictions, want %d", len(out), len(want))
	}
	for i, y := range out {
		if len(y) != 1 {
			t.Errorf("prediction %d = %v, want one value", i, y)
			continue
		}
		if math.Abs(y[0]-want[i]) > 1e-3 {
			t.Errorf("prediction %d = %v, want about %v", i, y, want[i])
		}
	}
}

// The same workload without its GPUs gets no key under that rule. The
// broker returns PolicyDeny, and its audit record names the missing GPU
// claim with its expected value.
func TestModelKeyRejectedWithoutGPUs(t *testing.T) {
	ctx := context.Background()
	d := newDeploymentWithGPUs(t, 1)

	// KBSClient attests the CPU TEE alone, without Devices.
	_, err := d.open(t, d.tee.Attester)
	if err == nil {
		t.Fatal("a workload without GPUs received the model key")
	}
	var problem *kbs.Problem
	if !errors.As(err, &problem) {
		t.Fatalf("error %v, want a *kbs.Problem", err)
	}
	if problem.Variant() != kbs.ProblemPolicyDeny {
		t.Fatalf("problem variant %s, want %s", problem.Variant(), kbs.ProblemPolicyDeny)
	}

	records, err := d.broker.Admin.ListAudit(ctx, store.AuditQuery{Action: store.AuditDeny})
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 1 {
		t.Fatalf("deny records = %+v, want one", records)
	}
	reason := records[0].Reason
	for _, want := range []string{"submods.gpu0.ear.status", `expected "affirming"`, "the token has no GPU appraisal"} {
		if !strings.Contains(reason, want) {
			t.Errorf("deny reason %q lacks %q", reason, want)
		}
	}
	if records[0].Resource != keyResource {
		t.Errorf("deny record resource %q, want %q", records[0].Resource, keyResource)
	}
}
