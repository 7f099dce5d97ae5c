// Command cloister verifies attestation evidence, runs the attestation
// service and key broker, and runs the agent inside a TEE. This package only
// wires command-line flags to Cloister's packages.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command.
const (
	exitOK       = 0
	exitRejected = 1
	exitUsage    = 2
	// exitHTTPStatus is connect --fail's status for an HTTP error response.
	exitHTTPStatus = 3
)

// exitError carries an exit code through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// usageError marks a usage or I/O failure (exit code 2).
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// commands holds the constructors of the top-level subcommands. Each
// command's file adds its own from init, so that files can be added without
// editing this one.
var commands []func() *cobra.Command

func register(newCmd func() *cobra.Command) { commands = append(commands, newCmd) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "cloister",
		Short: "Remote attestation, key release and attested channels for confidential computing",
		Long: `Cloister verifies attestation evidence from trusted execution environments
(AMD SEV-SNP, Intel SGX and TDX, AWS Nitro Enclaves, TPMs, Arm PSA and CCA,
NVIDIA GPUs and attestation-service tokens) against vendor roots and
collateral, appraises it, and releases secrets only to workloads that pass.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, newCmd := range commands {
		root.AddCommand(newCmd())
	}
	return root
}

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		os.Exit(exitOK)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "cloister:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "cloister:", err)
	os.Exit(exitUsage)
}
