//go:build linux

package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// agentHelperEnv makes TestAgentHelperProcess run an agent whose workload
// starts a child process, writes the child's PID into the file that the
// variable names, and waits.
const agentHelperEnv = "CLOISTER_AGENT_TEST_HELPER_PID_FILE"

// unusedAttester satisfies Config.Attester for an agent without a
// listener, which never attests.
type unusedAttester struct{}

func (unusedAttester) Name() string { return "unused" }

func (unusedAttester) Attest(context.Context, []byte) (*attest.Evidence, error) {
	return nil, errors.New("unused attester")
}

// TestAgentHelperProcess is the agent that TestAgentKilledStopsWorkload
// kills. It reports the secret directory on stdout.
func TestAgentHelperProcess(t *testing.T) {
	pidFile := os.Getenv(agentHelperEnv)
	if pidFile == "" {
		t.Skip("runs only as the helper process of TestAgentKilledStopsWorkload")
	}
	err := Run(context.Background(), Config{
		Attester: unusedAttester{},
		Source:   mapSource{"default/db/password": []byte("s3cret")},
		Secrets:  []Secret{{Path: "default/db/password", File: "db-password"}},
		Workload: Supervisor{Command: []string{"sh", "-c", "sleep 600 & echo $! > " + pidFile + "; wait"}},
		Ready:    func(dir string) { fmt.Println(dir) },
	})
	t.Fatalf("the agent returned while it should have been killed: %v", err)
}

// An agent killed with SIGKILL leaves neither the processes its workload
// started nor its secret directory behind.
func TestAgentKilledStopsWorkload(t *testing.T) {
	requireTmpfs(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	helper := exec.Command(os.Args[0], "-test.run=^TestAgentHelperProcess$")
	helper.Env = append(os.Environ(), agentHelperEnv+"="+pidFile)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()

	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the helper's secret directory: %v", err)
	}
	dir := strings.TrimSpace(line)
	if !strings.Contains(filepath.Base(dir), secretDirPrefix) {
		t.Fatalf("the helper printed %q, want its secret directory", dir)
	}
	child := waitForPID(t, pidFile)
	defer syscall.Kill(child, syscall.SIGKILL)

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	helper.Wait()

	deadline := time.Now().Add(10 * time.Second)
	for processRuns(child) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if processRuns(child) {
		t.Errorf("the workload's child process %d kept running after the agent was killed", child)
	}
	for exists(dir) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if exists(dir) {
		t.Errorf("the secret directory %s survived the killed agent", dir)
	}
	for exists(dir+lockSuffix) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if exists(dir + lockSuffix) {
		t.Errorf("the lock file of the wiped secret directory %s stayed", dir)
	}
}

// Cancelling the supervisor sends SIGTERM to the workload itself, not a
// SIGKILL from the reaper, so that the workload can shut down cleanly.
func TestSupervisorCancelSendsSIGTERM(t *testing.T) {
	tmp := t.TempDir()
	ready, marker := filepath.Join(tmp, "ready"), filepath.Join(tmp, "terminated")
	// The trap takes a second before it writes the marker, as a clean
	// shutdown takes time, so an early SIGKILL to the group would show.
	script := fmt.Sprintf(`trap 'sleep 1; echo term > %s; exit 0' TERM; : > %s; sleep 600 & wait`, marker, ready)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := Supervisor{Command: []string{"sh", "-c", script}, Policy: RestartNever, StopTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	for deadline := time.Now().Add(10 * time.Second); !exists(ready) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !exists(ready) {
		t.Fatal("the workload did not install its SIGTERM trap")
	}
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
	if got, err := os.ReadFile(marker); err != nil || string(got) != "term\n" {
		t.Errorf("the workload's SIGTERM trap did not run: %q, %v", got, err)
	}
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("stopping took %s, so the workload waited for the stop timeout", elapsed)
	}
}

// The supervisor reports the workload's own exit status and terminating
// signal, not the reaper's.
func TestSupervisorReportsWorkloadStatus(t *testing.T) {
	tests := []struct {
		script string
		want   string
	}{
		{"exit 7", "exit status 7"},
		{"kill -TERM $$", "signal: terminated"},
		{"kill -USR1 $$", "signal: user defined signal 1"},
		{"kill -KILL $$", "signal: killed"},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			s := Supervisor{Command: []string{"sh", "-c", tt.script}, Policy: RestartNever}
			err := s.Run(context.Background())
			if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("error %v, want one ending in %q", err, tt.want)
			}
		})
	}
}

// The workload does not see the reaper's environment variables.
func TestSupervisorHidesReaperEnv(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env")
	s := Supervisor{Command: []string{"sh", "-c", "env > " + out}, Policy: RestartNever}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), "CLOISTER_AGENT_REAPER") {
		t.Errorf("the workload's environment contains the reaper's variables:\n%s", env)
	}
}

func waitForPID(t *testing.T, pidFile string) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		raw, err := os.ReadFile(pidFile)
		if err != nil || !strings.HasSuffix(string(raw), "\n") {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
			return pid
		}
	}
	t.Fatal("the workload did not start its child process")
	return 0
}

// processRuns reports whether pid exists and is not a zombie, which holds
// no memory or open files while it waits for its parent.
func processRuns(pid int) bool {
	state, _, ok := procState(pid)
	return ok && state != 'Z' && state != 'X'
}

// A workload that ignores SIGTERM is killed after StopTimeout, together
// with the processes it started.
func TestSupervisorKillsAfterStopTimeout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := Supervisor{Command: []string{"sh", "-c", "trap '' TERM; sleep 600 & echo $! > " + pidFile + "; wait"},
		Policy: RestartNever, StopTimeout: time.Second}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	child := waitForPID(t, pidFile)
	defer syscall.Kill(child, syscall.SIGKILL)

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30 s after the cancel, with a stop timeout of 1 s")
	}
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("stopping took %s, less than the stop timeout, although the workload ignores SIGTERM", elapsed)
	}
	for deadline := time.Now().Add(5 * time.Second); processRuns(child) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if processRuns(child) {
		t.Errorf("the workload's child process %d kept running after the stop timeout", child)
	}
}
