package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// An emulated guest attests with an emulated GPU to cloister serve on
// loopback. audit ls shows the GPU in the DEVICES column of the attest
// record, -o json shows the whole devices text with the digests, and
// audit verify still finds the chain intact.
func TestAuditListShowsDevices(t *testing.T) {
	dir := t.TempDir()
	guest := newEmulatedGuest(t, dir)
	gpuPaths, err := nvgpu.EmulateToDir(context.Background(), nvgpu.EmulatorOptions{GPUs: 1}, make([]byte, 32), filepath.Join(dir, "gpu"))
	if err != nil {
		t.Fatal(err)
	}
	gpu, err := nvgpu.LoadEmulator(gpuPaths.State)
	if err != nil {
		t.Fatal(err)
	}
	s := startService(t, "--allow-emulated", "--trust-anchor", guest.trustAnchor,
		"--trust-anchor", "nvidia-gpu="+gpuPaths.Root, "--collateral", "nvidia-gpu="+gpuPaths.Collateral)
	if out, code := s.run(t, nil, "refvalue", "add", "snp.measurement", guest.measurement); code != exitOK {
		t.Fatalf("refvalue add: exit code %d:\n%s", code, out)
	}

	c := &kbs.Client{URL: s.url, Attester: guest.emulator, Devices: []attest.Attester{gpu},
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Jar: newJar(t)}}
	token, err := c.Attest(context.Background())
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	id := strings.TrimPrefix(tokenReference(t, token), "token:")

	runAdminSteps(t, s, []adminStep{
		{name: "ls shows devices", args: []string{"audit", "ls", "--token-id", id},
			want: []string{"DEVICES", "gpu0 nvidia-gpu affirming emulated"}, notWant: []string{"evidence=", "policy="}},
	})

	out, code := s.run(t, nil, "audit", "ls", "--token-id", id, "-o", "json")
	if code != exitOK {
		t.Fatalf("audit ls -o json: exit code %d:\n%s", code, out)
	}
	var records []store.AuditRecord
	if err := json.Unmarshal([]byte(out), &records); err != nil {
		t.Fatalf("audit ls -o json output is not JSON: %v\n%s", err, out)
	}
	if len(records) != 1 {
		t.Fatalf("audit ls --token-id -o json listed %d records, want the attest record: %s", len(records), out)
	}
	devicesPattern := regexp.MustCompile(`^gpu0 nvidia-gpu evidence=[0-9a-f]{64} policy=[0-9a-f]{64} status=affirming emulated$`)
	if !devicesPattern.MatchString(records[0].Devices) {
		t.Errorf("attest record devices %q, want them to match %s", records[0].Devices, devicesPattern)
	}
	if !strings.Contains(out, `"devices": "gpu0 nvidia-gpu evidence=`) {
		t.Errorf("audit ls -o json does not name the field devices:\n%s", out)
	}

	for _, args := range [][]string{{"audit", "verify"}, {"audit", "verify", "--data-dir", s.dataDir}} {
		out, code := s.run(t, nil, args...)
		if code != exitOK {
			t.Errorf("%s: exit code %d, want %d:\n%s", strings.Join(args, " "), code, exitOK, out)
		}
		if !strings.Contains(out, "audit chain intact") {
			t.Errorf("%s: output does not report an intact chain:\n%s", strings.Join(args, " "), out)
		}
	}
}

func TestDeviceSummary(t *testing.T) {
	const (
		evidence = "9c8d0db33be7ed1f021976105d371247980c899fefa0f9270cf42eb652a366f4"
		policy   = "ba9cc0279b8a8af9355f11e3b5df803ec6abc9e066459cfe30b3ffb9539c6a86"
	)
	tests := []struct {
		name, in, want string
	}{
		{name: "no devices", in: "", want: ""},
		{name: "one GPU", in: "gpu0 nvidia-gpu evidence=" + evidence + " policy=" + policy + " status=affirming",
			want: "gpu0 nvidia-gpu affirming"},
		{name: "two devices", in: "dcu0 hygondcu evidence=" + evidence + " policy=" + policy + " status=warning; " +
			"gpu0 nvidia-gpu evidence=" + evidence + " policy=" + policy + " status=contraindicated emulated",
			want: "dcu0 hygondcu warning; gpu0 nvidia-gpu contraindicated emulated"},
		{name: "unknown words unchanged", in: "gpu0 nvidia-gpu\nforged status=affirming", want: "gpu0 nvidia-gpu\nforged affirming"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deviceSummary(tt.in); got != tt.want {
				t.Errorf("deviceSummary(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
