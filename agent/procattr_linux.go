//go:build linux

package agent

import "syscall"

// workloadProcAttr starts the workload in a process group of its own, so
// that the agent can signal every process of it. It also has the kernel
// kill the workload's first process when the agent thread that started it
// exits, as happens when the agent is killed.
func workloadProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
