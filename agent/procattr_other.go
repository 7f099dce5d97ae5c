//go:build !linux

package agent

import "syscall"

// workloadProcAttr starts the workload in a process group of its own, so
// that the agent can signal every process of it.
func workloadProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
