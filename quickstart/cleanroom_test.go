package quickstart

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCleanRoomWalkthrough(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), &out, Options{}); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	text := out.String()
	if got, want := strings.Count(text, "   ok\n"), len(cleanRoomSteps); got != want {
		t.Errorf("%d steps succeeded, want %d:\n%s", got, want, text)
	}
	for _, want := range []string{
		"EMULATED",
		"ALLOWS emulated TEEs",
		"HOST_DATA = manifest sha256",
		"default appraisal rejects this evidence",
		"a party holding a manifest with min_group_size 1 is rejected",
		"a result request now is rejected",
		"2 groups under 5 customers were withheld",
		"HMAC-SHA256 verified",
		"data directory, with the sealed secret, was removed",
		"Next:",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestCleanRoomRemovesDataDir(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), &out, Options{}); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	line := text(out.String(), "SQLite in ")
	if line == "" {
		t.Fatalf("output names no data directory:\n%s", out.String())
	}
	if _, err := os.Stat(line); !os.IsNotExist(err) {
		t.Errorf("data directory %s still exists after the run (stat: %v)", line, err)
	}
}

// text returns the rest of the first output line after prefix.
func text(out, prefix string) string {
	_, rest, ok := strings.Cut(out, prefix)
	if !ok {
		return ""
	}
	line, _, _ := strings.Cut(rest, "\n")
	return strings.TrimSpace(line)
}

// A run cancelled part way, as by Ctrl-C, still removes its data
// directory, which holds the sealed secret.
func TestCancelledRunRemovesDataDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	for _, after := range []time.Duration{200 * time.Millisecond, 800 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), after)
		var out bytes.Buffer
		err := Run(ctx, &out, Options{})
		cancel()
		if err == nil {
			// The machine ran the whole walkthrough before the deadline.
			continue
		}
		left, err := filepath.Glob(filepath.Join(tmp, "cloister-quickstart-*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("cancelled after %s: %v left behind", after, left)
		}
	}
}
