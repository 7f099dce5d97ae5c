package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/tee/snp"
)

func TestSecretDir(t *testing.T) {
	requireTmpfs(t)
	d, err := NewSecretDir("/dev/shm")
	if err != nil {
		t.Fatal(err)
	}
	path, err := d.Write("key", []byte("value"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write("key", []byte("again")); err == nil {
		t.Errorf("a secret file was overwritten silently")
	}
	// A file the workload created is wiped too, also in a subdirectory.
	if err := os.WriteFile(filepath.Join(d.Path, "derived"), []byte("copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(d.Path, "sub", "copy")
	if err := os.MkdirAll(filepath.Dir(sub), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sub, []byte("value"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The overwrite is visible through descriptors opened before it.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsub, err := os.Open(sub)
	if err != nil {
		t.Fatal(err)
	}
	defer fsub.Close()
	if err := d.Wipe(); err != nil {
		t.Fatalf("Wipe: %v", err)
	}
	for name, file := range map[string]*os.File{"secret": f, "subdirectory copy": fsub} {
		buf := make([]byte, 5)
		if _, err := file.ReadAt(buf, 0); err != nil {
			t.Fatal(err)
		}
		if string(buf) != "\x00\x00\x00\x00\x00" {
			t.Errorf("the %s's content %q survived the wipe", name, buf)
		}
	}
	if _, err := os.Stat(d.Path); !os.IsNotExist(err) {
		t.Errorf("directory not removed: %v", err)
	}
}

// A secret file whose write fails partway is overwritten with zeros before
// it is removed, as Wipe overwrites the files it removes.
func TestSecretDirWriteFailureZeroesFile(t *testing.T) {
	requireTmpfs(t)
	d, err := NewSecretDir("/dev/shm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Wipe() })

	// The hook writes half the secret, opens a descriptor that can still
	// read the file after its removal, and fails.
	var reader *os.File
	writeErr := errors.New("no space left on device")
	saved := writeSecretFile
	t.Cleanup(func() { writeSecretFile = saved })
	writeSecretFile = func(f *os.File, data []byte) (int, error) {
		n, err := f.Write(data[:len(data)/2])
		if err != nil {
			return n, err
		}
		if reader, err = os.Open(f.Name()); err != nil {
			return n, err
		}
		return n, writeErr
	}

	_, err = d.Write("key", []byte("secret-value"))
	if !errors.Is(err, writeErr) {
		t.Fatalf("Write error = %v, want the write failure", err)
	}
	if reader == nil {
		t.Fatal("the write hook did not run")
	}
	defer reader.Close()

	if _, err := os.Stat(filepath.Join(d.Path, "key")); !os.IsNotExist(err) {
		t.Errorf("the failed secret file was not removed: %v", err)
	}

	buf := make([]byte, 16)
	n, err := reader.ReadAt(buf, 0)
	if err != nil && n == 0 {
		t.Fatalf("reading the removed file: %v", err)
	}
	if got := string(buf[:n]); got != "\x00\x00\x00\x00\x00\x00" {
		t.Errorf("the removed file contains %q, want the 6 written bytes overwritten with zeros", got)
	}
}

// SweepSecretDirs wipes a directory whose lock no process holds, as after an
// agent was killed with SIGKILL, and leaves a running agent's directory
// and directories without a lock file alone.
func TestSweepSecretDirs(t *testing.T) {
	requireTmpfs(t)
	// The brackets would be a pattern to filepath.Glob.
	base, err := os.MkdirTemp("/dev/shm", "cloister-sweep-test-[1]-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })

	live, err := NewSecretDir(base)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Wipe()
	if _, err := live.Write("key", []byte("live")); err != nil {
		t.Fatal(err)
	}

	// An abandoned directory: its lock file exists, but no process holds
	// the lock. The secret file is kept open to see the overwrite.
	abandoned := filepath.Join(base, secretDirPrefix+"abandoned")
	if err := os.Mkdir(abandoned, 0o700); err != nil {
		t.Fatal(err)
	}
	// The workload made the secret and its subdirectory read-only.
	secret := filepath.Join(abandoned, "sub", "key")
	if err := os.Mkdir(filepath.Dir(secret), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("value"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(secret), 0o500); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abandoned+lockSuffix, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// Temporary lock files of agents that stopped while they created
	// one: an old one goes with its directory, a young one stays.
	stale := filepath.Join(base, secretDirPrefix+"1111")
	staleLock := filepath.Join(base, tempLockPrefix+secretDirPrefix+"1111"+tempLockSeparator+"42")
	youngLock := filepath.Join(base, tempLockPrefix+secretDirPrefix+"2222"+tempLockSeparator+"43")
	for _, path := range []string{staleLock, youngLock} {
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * tempLockMinAge)
	if err := os.Chtimes(staleLock, old, old); err != nil {
		t.Fatal(err)
	}

	// A lock file whose directory is gone, and a directory without one.
	orphanLock := filepath.Join(base, secretDirPrefix+"gone"+lockSuffix)
	if err := os.WriteFile(orphanLock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unlocked := filepath.Join(base, secretDirPrefix+"unlocked")
	if err := os.Mkdir(unlocked, 0o700); err != nil {
		t.Fatal(err)
	}

	wiped, err := SweepSecretDirs(base)
	if err != nil {
		t.Fatalf("SweepSecretDirs: %v", err)
	}
	slices.Sort(wiped)
	if want := []string{stale, abandoned}; !slices.Equal(wiped, want) {
		t.Errorf("wiped %v, want %v", wiped, want)
	}
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "\x00\x00\x00\x00\x00" {
		t.Errorf("the abandoned secret's content %q survived the sweep", buf)
	}
	for path, want := range map[string]bool{
		abandoned: false, abandoned + lockSuffix: false, orphanLock: false,
		stale: false, staleLock: false, youngLock: true,
		live.Path: true, live.Path + lockSuffix: true, unlocked: true,
	} {
		if _, err := os.Lstat(path); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", path, err == nil, want)
		}
	}

	if err := live.Wipe(); err != nil {
		t.Fatalf("Wipe: %v", err)
	}
	if _, err := os.Lstat(live.Path + lockSuffix); !os.IsNotExist(err) {
		t.Errorf("Wipe left the lock file: %v", err)
	}
}

func TestSecretDirRejectsDisk(t *testing.T) {
	dir := t.TempDir()
	if requireMemoryFS(dir) == nil {
		t.Skip("the temporary directory is on a tmpfs here")
	}
	if _, err := NewSecretDir(dir); err == nil {
		t.Errorf("a secret directory on a disk file system was accepted")
	}
}

func TestSecretNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "a\x00"} {
		if ValidSecretName(name) == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	tests := []struct {
		in   string
		want Secret
		ok   bool
	}{
		{"default/key/db", Secret{Path: "default/key/db", File: "db"}, true},
		{"default/key/db=db.pem", Secret{Path: "default/key/db", File: "db.pem"}, true},
		{"default/key", Secret{}, false},
		{"default/key/db=../x", Secret{}, false},
		{"/key/db", Secret{}, false},
	}
	for _, tt := range tests {
		got, err := ParseSecret(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSecret(%q) = %+v, %v", tt.in, got, err)
		}
	}
	if s, err := ParseSecretEnv("TOKEN=default/api/token"); err != nil || s.Env != "TOKEN" || s.Path != "default/api/token" {
		t.Errorf("ParseSecretEnv = %+v, %v", s, err)
	}
	if _, err := ParseSecretEnv("default/api/token"); err == nil {
		t.Errorf("ParseSecretEnv accepted a value without VAR=")
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:80": true, "localhost:80": false,
		"10.0.0.1:80": false, "example.com:80": false, "0.0.0.0:80": false, "127.0.0.1": false,
	} {
		if got := CheckLoopback(addr) == nil; got != ok {
			t.Errorf("CheckLoopback(%q) ok=%v, want %v", addr, got, ok)
		}
	}
}

func TestSupervisorPolicies(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		policy  RestartPolicy
		starts  int
		wantErr error
	}{
		{"never after failure", []string{"sh", "-c", "exit 3"}, RestartNever, 1, nil},
		{"on-failure gives up", []string{"sh", "-c", "exit 3"}, RestartOnFailure, 3, ErrGaveUp},
		{"on-failure after success", []string{"true"}, RestartOnFailure, 1, nil},
		{"always after success", []string{"true"}, RestartAlways, 3, ErrGaveUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			starts := 0
			s := Supervisor{Command: tt.command, Policy: tt.policy, MaxRestarts: 2, Backoff: time.Millisecond,
				Started: func(int) { starts++ }}
			err := s.Run(context.Background())
			if starts != tt.starts {
				t.Errorf("started %d times, want %d", starts, tt.starts)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if tt.policy == RestartNever && tt.command[0] == "sh" && err == nil {
				t.Errorf("a failed workload under policy never returned no error")
			}
		})
	}
}

func TestSupervisorStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := Supervisor{Command: []string{"sleep", "60"}, Policy: RestartAlways, MaxRestarts: 5, StopTimeout: time.Second,
		Started: func(int) { cancel() }}
	start := time.Now()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("stopping took %s", time.Since(start))
	}
}

func TestOpenAttesterEmulated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "emu")
	first, err := OpenAttester(AttesterOptions{Emulated: true, EmulatorDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Emulated || first.Attester.Name() != "emulated-snp" {
		t.Errorf("selection %+v, want the emulated SEV-SNP TEE", first)
	}
	second, err := OpenAttester(AttesterOptions{Emulated: true, EmulatorDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Emulator.Root().Equal(second.Emulator.Root()) {
		t.Errorf("the development root changed across runs with the same directory")
	}
	if _, err := OpenAttester(AttesterOptions{}); err != nil && !errors.Is(err, ErrNoTEE) {
		t.Errorf("error %v, want ErrNoTEE on a machine without TEE hardware", err)
	}
}

// A VMPL applies to the SEV-SNP hardware attester only, so OpenAttester
// rejects it for the emulated TEE and for another TEE's attester.
func TestOpenAttesterSNPVMPL(t *testing.T) {
	_, err := OpenAttester(AttesterOptions{Emulated: true, SNPVMPL: new(uint32(1))})
	if err == nil || !strings.Contains(err.Error(), "the emulated TEE reports at VMPL 0 only") {
		t.Errorf("emulated TEE with a VMPL: error %v, want one rejecting the VMPL", err)
	}

	emulator, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = applySNPVMPL(emulator, new(uint32(1)))
	if err == nil || !strings.Contains(err.Error(), "this machine's attester is emulated-snp, not SEV-SNP") {
		t.Errorf("other attester with a VMPL: error %v, want one naming the attester", err)
	}
	if err := applySNPVMPL(emulator, nil); err != nil {
		t.Errorf("other attester without a VMPL: error %v, want none", err)
	}

	if err := applySNPVMPL(&snp.HardwareAttester{}, new(uint32(2))); err != nil {
		t.Errorf("SEV-SNP attester with VMPL 2: error %v, want none", err)
	}
	err = applySNPVMPL(&snp.HardwareAttester{}, new(uint32(4)))
	if err == nil || !strings.Contains(err.Error(), "VMPL 4 is out of range") {
		t.Errorf("SEV-SNP attester with VMPL 4: error %v, want one naming the range", err)
	}
}

// Stopping the workload also stops the processes it started, which would
// otherwise keep its secrets.
func TestSupervisorStopsWorkloadChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := Supervisor{Command: []string{"sh", "-c", "sleep 600 & echo $! > " + pidFile + "; wait"},
		Policy: RestartNever, StopTimeout: time.Second}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	var child int
	for deadline := time.Now().Add(10 * time.Second); child == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if raw, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(raw), "\n") {
			child, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
		}
	}
	if child == 0 {
		t.Fatal("the workload did not start its child process")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}

	// The child is gone once its group was killed; a zombie waiting for
	// its reaper counts as gone too.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
	}
	syscall.Kill(child, syscall.SIGKILL)
	t.Errorf("the workload's child process %d kept running after the workload was stopped", child)
}
