package main

import (
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/quickstart"
)

func init() { register(newQuickstartCmd) }

func newQuickstartCmd() *cobra.Command {
	var basic, verbose bool
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run a data clean room in an emulated SEV-SNP TEE, offline, step by step",
		Long: `Run a complete confidential workload on any machine, without a TEE or a network.
The quickstart starts an attestation service on 127.0.0.1 (SQLite in a
temporary directory, emulated TEEs allowed, the run's development root as trust
anchor), stores the workload's secret through the admin API, and runs a data
clean room in an emulated SEV-SNP TEE for two data-owning parties. It walks six
steps: (1) the TEE is created, (2) the workload is measured and loaded, (3) its
evidence is verified and appraised and its secret released over the KBS
protocol, (4) each party opens an attested channel, (5) the two parties' data
is computed on, (6) the result is returned and the keys are destroyed. Every
step prints what it proved. The TEE is EMULATED and proves no hardware.

With --basic it runs the shorter walkthrough instead: emulate one SEV-SNP
report, verify it, and show that the default appraisal rejects emulated
evidence, that --allow-emulated accepts it, and that a debug guest is rejected.

See docs/quickstart.md. Exit status: 0 when every step succeeded, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The RA-TLS certificate source logs through slog.Default, so
			// quiet mode replaces it too.
			handler := slog.Handler(slog.NewTextHandler(io.Discard, nil))
			if verbose {
				handler = slog.NewTextHandler(os.Stderr, nil)
			}
			log := slog.New(handler)
			slog.SetDefault(log)

			// Ctrl-C or SIGTERM cancels the run, so that the service stops
			// and its temporary directory, which holds the sealed secret,
			// is removed.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			var err error
			if basic {
				err = quickstart.RunBasic(ctx, cmd.OutOrStdout())
			} else {
				err = quickstart.Run(ctx, cmd.OutOrStdout(), quickstart.Options{Log: log})
			}
			if err != nil {
				return &exitError{code: exitRejected, err: err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&basic, "basic", false, "run the shorter walkthrough: verify and appraise one emulated report")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "write the logs of the service and the workload to standard error")
	return cmd
}
