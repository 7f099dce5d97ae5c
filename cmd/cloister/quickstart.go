package main

import (
	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/quickstart"
)

func init() { register(newQuickstartCmd) }

func newQuickstartCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "quickstart",
		Short: "Walk through attestation with an emulated SEV-SNP guest, offline",
		Long: `Run Cloister's first steps on any machine, without a TEE or a network: emulate
an SEV-SNP guest that binds a fresh key's hash, verify its report against a
development root, and show that the default appraisal rejects emulated
evidence, that --allow-emulated accepts it, and that a debug guest is
rejected. Every step prints what it proved. The evidence is EMULATED and
proves no hardware.

Exit status: 0 when every step succeeded, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := quickstart.Run(cmd.Context(), cmd.OutOrStdout()); err != nil {
				return &exitError{code: exitRejected, err: err}
			}
			return nil
		},
	}
}
