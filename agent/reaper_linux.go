//go:build linux

package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The agent passes the reaper its own process ID and the secret directory
// (the last $CLOISTER_SECRETS_DIR of the workload's environment, which Run
// sets) in these environment variables. The first one also marks a
// process as a reaper (see init). The reaper removes both before it
// starts the workload.
const (
	reaperParentEnv    = reservedEnvPrefix + "PARENT"
	reaperSecretDirEnv = reservedEnvPrefix + "SECRET_DIR"
)

const (
	// reaperName is the reaper's argv[0], as ps shows it.
	reaperName = "cloister-agent-reaper"
	// reaperDeathSignal is the reaper's parent-death signal. Its default
	// action is to ignore it, so that a death signal that arrives while the
	// Go runtime starts, before the reaper handles signals, does not end
	// the reaper. The reaper then finds its parent gone by its parent
	// process ID.
	reaperDeathSignal = syscall.SIGWINCH
	// reaperKillTimeout bounds how long the reaper waits for the killed
	// processes to exit before it wipes the secret directory anyway.
	reaperKillTimeout = 5 * time.Second
	// exitReaperFailed is the reaper's exit status when it cannot start or
	// wait for the workload, the status a shell reports for a command it
	// cannot run.
	exitReaperFailed = 127
)

// init turns this process into a reaper when the agent started it as one.
// It runs from init, so that every binary that can run a Supervisor, test
// binaries included, also runs as its reaper when re-executed, before its
// main function parses any argument.
func init() {
	if _, ok := os.LookupEnv(reaperParentEnv); ok {
		os.Exit(runReaper())
	}
}

// command returns the workload's command wrapped in a reaper: the agent's
// own executable re-executed from /proc/self/exe as the leader of a new
// process group, with reaperDeathSignal as its parent-death signal. The
// workload's program is looked up here, with the agent's PATH, as it was
// before the reaper existed.
func (s *Supervisor) command(ctx context.Context) (*exec.Cmd, error) {
	workload := exec.Command(s.Command[0], s.Command[1:]...)
	if workload.Err != nil {
		return nil, workload.Err
	}
	env := s.Env
	if env == nil {
		env = os.Environ()
	}
	env = withoutReaperEnv(env)

	if os.Getpid() == 1 {
		// An agent that is PID 1 cannot be orphaned, because when it dies
		// the kernel kills every process of its PID namespace. So the
		// workload starts without a reaper.
		cmd := exec.CommandContext(ctx, workload.Path, s.Command[1:]...)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd, nil
	}

	env = append(env,
		reaperParentEnv+"="+strconv.Itoa(os.Getpid()),
		reaperSecretDirEnv+"="+lastEnv(env, SecretsDirEnv))
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = append([]string{reaperName, workload.Path}, s.Command...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: reaperDeathSignal}
	return cmd, nil
}

// lastEnv returns the value of the last entry for name in env, which is
// the value that a process started with env gets, or "" when there is none.
func lastEnv(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if value, ok := strings.CutPrefix(env[i], name+"="); ok {
			return value
		}
	}
	return ""
}

// withoutReaperEnv returns a copy of env without the reaper's variables,
// so that a workload that runs an agent of its own starts it as an agent.
func withoutReaperEnv(env []string) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if strings.HasPrefix(kv, reaperParentEnv+"=") || strings.HasPrefix(kv, reaperSecretDirEnv+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// runReaper runs the workload os.Args[2:] from the program os.Args[1] in
// the reaper's process group and returns its exit status, or ends the
// reaper with the signal that ended the workload. When the agent is gone,
// it kills the group and wipes the secret directory instead.
func runReaper() int {
	// JSON lines on standard error, as the agent command writes them.
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	parent, err := strconv.Atoi(os.Getenv(reaperParentEnv))
	secretDir := os.Getenv(reaperSecretDirEnv)
	os.Unsetenv(reaperParentEnv)
	os.Unsetenv(reaperSecretDirEnv)
	if err != nil || parent <= 1 || len(os.Args) < 3 {
		fmt.Fprintf(os.Stderr, "%s: invalid %s or missing workload arguments. Only the cloister agent starts this process.\n", reaperName, reaperParentEnv)
		return exitReaperFailed
	}

	// The workload's parent-death signal fires when this thread exits.
	runtime.LockOSThread()
	// Caught rather than ignored, because an ignored signal stays ignored
	// in the workload. None of them may end the reaper while the agent
	// lives, because the workload's process group receives them too.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, reaperDeathSignal, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
		syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	// The agent may have died before the handler was installed.
	if os.Getppid() != parent {
		reapOrphanedGroup(log, secretDir)
	}

	cmd := &exec.Cmd{Path: os.Args[1], Args: os.Args[2:], Env: os.Environ(),
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: starting the workload: %v\n", reaperName, err)
		return exitReaperFailed
	}
	exited := make(chan struct{})
	go func() {
		if err := cmd.Wait(); cmd.ProcessState == nil {
			log.Error("agent reaper: waiting for the workload failed", "pid", cmd.Process.Pid, "err", err)
		}
		close(exited)
	}()
	for {
		select {
		case <-signals:
		case <-exited:
		}
		if os.Getppid() != parent {
			reapOrphanedGroup(log, secretDir)
		}
		select {
		case <-exited:
			return exitLike(cmd.ProcessState)
		default:
		}
	}
}

// reapOrphanedGroup kills every other process of the reaper's process
// group, wipes the secret directory, and ends the reaper. The reaper kills
// itself last, because a SIGKILL to its group would end it before the wipe.
func reapOrphanedGroup(log *slog.Logger, secretDir string) {
	self, group := os.Getpid(), unix.Getpgrp()
	deadline := time.Now().Add(reaperKillTimeout)
	for killGroupExcept(group, self) > 0 {
		if time.Now().After(deadline) {
			log.Error("agent reaper: processes of the workload survived SIGKILL, so the secret directory is wiped while they run", "pgid", group, "waited", reaperKillTimeout)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if secretDir != "" {
		wipeOrphanedSecretDir(log, secretDir)
	}
	log.Warn("agent reaper: the agent is gone, so the workload's processes were killed", "pgid", group)
	syscall.Kill(-group, syscall.SIGKILL)
	os.Exit(1)
}

// killGroupExcept sends SIGKILL to every process in the process group
// other than the one with PID self, and returns how many it found that
// had not exited. Zombies count as exited, because they hold no memory
// or open files.
func killGroupExcept(group, self int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		// Without /proc the group cannot be listed, but the final SIGKILL
		// to the whole group still reaches it.
		return 0
	}
	alive := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		state, pgrp, ok := procState(pid)
		if !ok || pgrp != group || state == 'Z' || state == 'X' {
			continue
		}
		alive++
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return alive
}

// procState returns the state and process group of the process pid from
// /proc/PID/stat. The fields are read after the last ')', because the
// command name before it may contain spaces and parentheses.
func procState(pid int) (state byte, pgrp int, ok bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0, 0, false
	}
	// After the command name: state, ppid, pgrp, ...
	fields := strings.Fields(string(raw[i+1:]))
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(fields[2])
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], pgrp, true
}

// wipeOrphanedSecretDir wipes the killed agent's secret directory and
// removes its lock file. It wipes only a directory whose lock file no
// process holds, as SweepSecretDirs does, so a directory of an agent that
// still runs is never wiped. The kernel releases the killed agent's lock
// before it sends the reaper the parent-death signal. When the wipe fails,
// the lock file stays, so that the next agent's SweepSecretDirs tries
// again.
func wipeOrphanedSecretDir(log *slog.Logger, dir string) {
	if !strings.HasPrefix(filepath.Base(dir), secretDirPrefix) {
		log.Error("agent reaper: not wiping a path that is not a secret directory", "dir", dir)
		return
	}
	// The agent's lock is released when the last of its threads ends,
	// which may come after this reaper got the parent-death signal.
	wiped, err := sweepSecretDir(dir+lockSuffix, dir)
	for deadline := time.Now().Add(reaperKillTimeout); err == nil && !wiped && exists(dir) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		wiped, err = sweepSecretDir(dir+lockSuffix, dir)
	}
	switch {
	case err != nil:
		log.Error("agent reaper: wiping the secret directory failed, so the next agent with the same secret base wipes it", "dir", dir, "err", err)
	case wiped:
		log.Warn("agent reaper: wiped the secret directory of the killed agent", "dir", dir)
	case exists(dir):
		log.Error("agent reaper: the secret directory was not wiped, because its lock file is missing, is not this user's, or is still locked", "dir", dir)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// exitLike returns the workload's exit status, or ends the reaper with the
// signal that ended the workload, so that the agent gets the same status
// as without the reaper.
func exitLike(state *os.ProcessState) int {
	if state == nil {
		// Waiting failed, so the workload's status is unknown.
		return exitReaperFailed
	}
	ws, ok := state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return state.ExitCode()
	}
	raise(ws.Signal())
	// The signal did not end the reaper, so report it as a shell does.
	return 128 + int(ws.Signal())
}

// raise ends the process with sig. The Go runtime handles many signals
// itself, for example by printing a stack trace on SIGQUIT, so raise sets
// the kernel's default action directly, as the runtime does before it
// dies from a signal.
func raise(sig syscall.Signal) {
	// A zeroed struct sigaction is SIG_DFL with no flags and an empty
	// mask, whatever the field order of the architecture. Its 64 bytes
	// exceed the kernel's 32-byte struct on amd64 and arm64.
	var action [8]uint64
	// NOTE: 8 is the kernel's sizeof(sigset_t) on amd64 and arm64. MIPS,
	// with 128 signals, uses 16, so there the call fails and the reaper
	// exits with 128+sig instead.
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&action)), 0, 8, 0, 0)
	var set unix.Sigset_t
	set.Val[(int(sig)-1)/64] |= 1 << ((uint(sig) - 1) % 64)
	unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
	syscall.Kill(os.Getpid(), sig)
	// Delivery to another thread may take a moment.
	time.Sleep(100 * time.Millisecond)
}
