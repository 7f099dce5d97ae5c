package quickstart

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunBasicSucceeds(t *testing.T) {
	var out bytes.Buffer
	if err := RunBasic(context.Background(), &out); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"EMULATED", "rejected, as it must be", "accepted (EMULATED)", "DEBUG set: rejected", "Next:"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if got, want := strings.Count(text, "   ok\n"), len(Steps()); got != want {
		t.Errorf("%d steps succeeded, want %d", got, want)
	}
}
