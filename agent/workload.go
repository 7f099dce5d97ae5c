package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"syscall"
	"time"
)

// RestartPolicy is the rule for when the supervisor restarts the workload.
type RestartPolicy string

const (
	RestartNever     RestartPolicy = "never"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartAlways    RestartPolicy = "always"
)

// ParseRestartPolicy parses a --restart value.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	switch p := RestartPolicy(s); p {
	case RestartNever, RestartOnFailure, RestartAlways:
		return p, nil
	}
	return "", fmt.Errorf("invalid restart policy %q: use never, on-failure or always", s)
}

// Supervisor runs the workload command and restarts it by policy with
// exponential backoff, up to MaxRestarts times.
type Supervisor struct {
	// Command is the program and its arguments.
	Command []string
	// Env is the complete environment of the workload.
	Env []string
	// Policy is the restart policy; empty means RestartNever.
	Policy RestartPolicy
	// MaxRestarts bounds the restarts; the supervisor gives up after it.
	MaxRestarts int
	// Backoff is the first delay before a restart, doubled after each
	// restart up to MaxBackoff. Zero means one second and 30 seconds.
	Backoff, MaxBackoff time.Duration
	// StopTimeout is how long a workload gets after SIGTERM before it is
	// killed; zero means 10 seconds.
	StopTimeout time.Duration
	// Stdout and Stderr receive the workload's output; nil means the
	// agent's own.
	Stdout, Stderr *os.File
	Log            *slog.Logger
	// Started, when set, is called with the process ID of each start: the
	// leader of the workload's process group, which is the reaper on Linux.
	Started func(pid int)
}

// ErrGaveUp reports a workload that kept exiting after MaxRestarts
// restarts.
var ErrGaveUp = errors.New("workload kept exiting")

// Run starts the workload and supervises it until it exits for good or
// ctx is cancelled, in which case the workload is stopped and Run returns
// nil. It returns the workload's last error when the policy does not
// restart it.
func (s *Supervisor) Run(ctx context.Context) error {
	if len(s.Command) == 0 {
		return errors.New("agent: no workload command; give it after --")
	}
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	backoff, maxBackoff := s.Backoff, s.MaxBackoff
	if backoff <= 0 {
		backoff = time.Second
	}
	if maxBackoff <= 0 {
		maxBackoff = 30 * time.Second
	}

	for restarts := 0; ; restarts++ {
		err := s.runOnce(ctx, log)
		if ctx.Err() != nil {
			log.Info("agent: workload stopped on shutdown", "command", s.Command[0], "err", err)
			return nil
		}
		switch {
		case err == nil && s.Policy != RestartAlways:
			log.Info("agent: workload exited", "command", s.Command[0], "status", 0)
			return nil
		case err != nil:
			log.Error("agent: workload failed", "command", s.Command[0], "err", err, "restarts", restarts)
			if s.Policy == "" || s.Policy == RestartNever {
				return fmt.Errorf("agent: workload %s: %w", s.Command[0], err)
			}
		default:
			log.Info("agent: workload exited; restarting by policy", "command", s.Command[0], "policy", s.Policy)
		}
		if restarts >= s.MaxRestarts {
			last := "it last exited with status 0"
			if err != nil {
				last = "last error: " + err.Error()
			}
			return fmt.Errorf("agent: %w: %s gave up after %d restarts (%s); raise --max-restarts, or use --restart on-failure for a workload that may exit", ErrGaveUp, s.Command[0], restarts, last)
		}
		log.Info("agent: restarting workload", "command", s.Command[0], "in", backoff, "restart", restarts+1, "max_restarts", s.MaxRestarts)
		// NOTE: no reaper runs during the backoff, so an agent killed now
		// leaves the secret directory to the next agent's sweep.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// runOnce starts the workload and waits for it. On cancellation it sends
// SIGTERM to the workload's process group and, after StopTimeout, SIGKILL
// to its first process. When that process has exited, every process left
// in its group gets SIGKILL, because a process the workload started would
// otherwise keep the secrets of its environment and open files.
//
// On Linux the group's first process is the reaper (see command), which
// passes the workload's exit status through and, when the agent is killed,
// kills the group and wipes the secret directory.
func (s *Supervisor) runOnce(ctx context.Context, log *slog.Logger) error {
	// The reaper's parent-death signal fires when the thread that started
	// it exits, so that thread must stay this goroutine's until the reaper
	// ends. The reaper ignores the signal while the agent lives.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	cmd, err := s.command(ctx)
	if err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if s.Stdout != nil {
		cmd.Stdout = s.Stdout
	}
	if s.Stderr != nil {
		cmd.Stderr = s.Stderr
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = s.StopTimeout
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = 10 * time.Second
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	log.Info("agent: workload started", "command", s.Command[0], "pid", cmd.Process.Pid)
	if s.Started != nil {
		s.Started(cmd.Process.Pid)
	}
	err = cmd.Wait()
	// NOTE: an agent killed between the reaper's exit and this SIGKILL
	// leaves the workload's remaining processes running.
	if kerr := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); kerr == nil {
		log.Warn("agent: stopped processes that the workload left running", "pgid", cmd.Process.Pid)
	}
	return err
}
