package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/attest"
)

func init() { register(newEmulateCmd) }

// emulateCommands holds the constructors of the `emulate` subcommands, one
// per emulated TEE. Each TEE's command file adds its own from init with
// registerEmulate, so that a TEE can be added without editing this file.
var emulateCommands []func() *cobra.Command

// registerEmulate adds the constructor of an `emulate <tee>` subcommand.
func registerEmulate(newCmd func() *cobra.Command) {
	emulateCommands = append(emulateCommands, newCmd)
}

func newEmulateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emulate",
		Short: "Produce evidence from an emulated TEE, signed by a development root",
		Long: fmt.Sprintf(`Produce attestation evidence in a real TEE format on a machine without that
TEE. The evidence is signed by a development root generated on this machine,
whose certificates carry the organization
%q.
It proves the format and the binding of the report data, never hardware.

cloister verify accepts such evidence only when the development root is
passed with --trust-anchor, and the default appraisal rejects it unless
--allow-emulated is given.`, attest.EmulatedOrganization),
		Args: cobra.NoArgs,
	}
	for _, newSub := range emulateCommands {
		cmd.AddCommand(newSub())
	}
	return cmd
}
