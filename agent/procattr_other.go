//go:build !linux

package agent

import (
	"context"
	"os/exec"
	"syscall"
)

// command returns the workload's command in a process group of its own,
// so that the agent can signal every process of it. Without Linux's
// parent-death signal there is no reaper, so the workload outlives an
// agent killed with SIGKILL.
func (s *Supervisor) command(ctx context.Context) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, s.Command[0], s.Command[1:]...)
	if cmd.Err != nil {
		return nil, cmd.Err
	}
	cmd.Env = s.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}
