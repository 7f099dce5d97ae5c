package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/aggregate"
)

func init() { register(newAggregateCmd) }

func newAggregateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "aggregate",
		Short: "Run secure aggregation for federated learning: only the mean of k or more updates leaves the TEE",
		Long: `Secure aggregation collects model updates (vectors of a fixed dimension)
from the parties of a manifest over RA-TLS and releases only the mean of a
round, once at least min_clients distinct parties contributed. Updates are
clipped to clip_norm, added to the round's sum and zeroed; no endpoint
returns one. Each party submits at most once per round.

The manifest's SHA-256 is bound into the TEE's evidence (SEV-SNP HOST_DATA),
so a party that verifies the workload before submitting also verifies the
threshold, the clipping norm and the party list. See
docs/workloads/aggregation.md.`,
	}
	cmd.AddCommand(newManifestHashCmd(aggregate.ParseManifest), newPartyKeygenCmd(), newAggregateServeCmd(),
		newAggregateStatusCmd(), newAggregateSubmitCmd(), newAggregateCloseCmd(), newAggregateResultCmd())
	return cmd
}

func newAggregateServeCmd() *cobra.Command {
	var f workloadServeFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the aggregation workload inside the TEE",
		Long: `Run the secure aggregation workload of a manifest over RA-TLS. Only the
manifest's parties can connect. Round 1 is open at start; a party closes a
round with cloister aggregate close once min_clients parties contributed.

On hardware, the host must launch the TEE with the manifest's SHA-256
(cloister aggregate hash) as SEV-SNP HOST_DATA or TDX MRCONFIGID; the workload
checks its own evidence at start. With --emulated, the emulated SEV-SNP TEE
binds the digest itself and its evidence is labelled EMULATED.`,
		Example: `  cloister aggregate serve --manifest federation.json --emulated \
      --emulator-dir dev-tee --listen 127.0.0.1:8443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serveWorkload(cmd, &f, aggregate.ParseManifest, func(ctx context.Context, tee *workload.TEE, ln net.Listener, log *slog.Logger, m *aggregate.Manifest, digest workload.Digest) error {
				printWorkload(cmd.OutOrStdout(), "aggregation", m.Name, ln.Addr().String(), digest, tee)
				return aggregate.Serve(ctx, ln, tee, m, digest, log)
			})
		},
	}
	f.bind(cmd, "")
	return cmd
}

// aggregateClient returns a party client that expects --manifest.
func aggregateClient(f *workloadPartyFlags) (*aggregate.Client, error) {
	return partyClient(f, aggregate.ParseManifest, aggregate.NewClient)
}

func newAggregateStatusCmd() *cobra.Command {
	var f workloadPartyFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Verify the workload and print the open round and its number of contributors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := aggregateClient(&f)
			if err != nil {
				return err
			}
			return callWorkload(cmd, &f, func(ctx context.Context) (any, error) { return c.Status(ctx) })
		},
	}
	f.bind(cmd, partyTimeout)
	return cmd
}

func newAggregateSubmitCmd() *cobra.Command {
	var f workloadPartyFlags
	var round uint64
	cmd := &cobra.Command{
		Use:   "submit --round N FILE.json",
		Short: "Verify the workload and submit this party's update for a round",
		Long: `Verify the aggregation workload (evidence, measurement and manifest digest)
and submit one update: a JSON array of numbers of the manifest's dimension, read
from FILE ("-" for standard input). Nothing is sent unless the verification
succeeds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if round == 0 {
				return usageError("--round is required: the open round, which cloister aggregate status prints")
			}
			update, err := readUpdate(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := aggregateClient(&f)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			if err := c.Submit(ctx, round, update); err != nil {
				return rejected(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "submitted an update of %d values to round %d after verifying the workload\n", len(update), round)
			return nil
		},
	}
	f.bind(cmd, partyTimeout)
	cmd.Flags().Uint64Var(&round, "round", 0, "the round to contribute to")
	return cmd
}

func readUpdate(cmd *cobra.Command, path string) ([]float64, error) {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(cmd.InOrStdin())
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, usageError("reading the update: %v", err)
	}
	var update []float64
	if err := json.Unmarshal(raw, &update); err != nil {
		return nil, usageError("the update in %s is not a JSON array of numbers: %v", path, err)
	}
	return update, nil
}

func newAggregateCloseCmd() *cobra.Command {
	var f workloadPartyFlags
	var round uint64
	cmd := &cobra.Command{
		Use:   "close --round N",
		Short: "Close a round and print its mean; rejected while fewer than min_clients parties contributed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if round == 0 {
				return usageError("--round is required")
			}
			c, err := aggregateClient(&f)
			if err != nil {
				return err
			}
			return callWorkload(cmd, &f, func(ctx context.Context) (any, error) { return c.Close(ctx, round) })
		},
	}
	f.bind(cmd, partyTimeout)
	cmd.Flags().Uint64Var(&round, "round", 0, "the open round to close")
	return cmd
}

func newAggregateResultCmd() *cobra.Command {
	var f workloadPartyFlags
	cmd := &cobra.Command{
		Use:   "result ROUND",
		Short: "Verify the workload and print the mean of a closed round",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			round, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || round == 0 {
				return usageError("invalid round %q: use a positive integer", args[0])
			}
			c, err := aggregateClient(&f)
			if err != nil {
				return err
			}
			return callWorkload(cmd, &f, func(ctx context.Context) (any, error) { return c.Result(ctx, round) })
		},
	}
	f.bind(cmd, partyTimeout)
	return cmd
}
