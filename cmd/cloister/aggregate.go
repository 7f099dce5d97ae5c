package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/kbs"
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
	cmd.AddCommand(newAggregateHashCmd(), newCleanroomKeygenCmd(), newAggregateServeCmd(),
		newAggregateStatusCmd(), newAggregateSubmitCmd(), newAggregateCloseCmd(), newAggregateResultCmd())
	return cmd
}

// readWorkloadManifest reads a manifest file and parses it with parse,
// which validates it and returns its digest.
func readWorkloadManifest[M any](path string, parse func([]byte) (M, workload.Digest, error)) (M, workload.Digest, error) {
	var zero M
	if path == "" {
		return zero, workload.Digest{}, usageError("--manifest is required")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return zero, workload.Digest{}, usageError("--manifest: %v", err)
	}
	m, d, err := parse(raw)
	if err != nil {
		return zero, d, usageError("--manifest %s: %v", path, err)
	}
	return m, d, nil
}

// newManifestHashCmd prints the digest of a manifest that parse accepts.
func newManifestHashCmd[M any](parse func([]byte) (M, workload.Digest, error)) *cobra.Command {
	var manifest string
	cmd := &cobra.Command{
		Use:   "hash",
		Short: "Validate a manifest and print its SHA-256, the value bound as HOST_DATA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, d, err := readWorkloadManifest(manifest, parse)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	cmd.Flags().StringVar(&manifest, "manifest", "", "workload manifest (JSON)")
	return cmd
}

func newAggregateHashCmd() *cobra.Command { return newManifestHashCmd(aggregate.ParseManifest) }

// workloadServeFlags are the flags of a workload's serve command.
type workloadServeFlags struct {
	tee      cleanroomServeFlags
	kbsURL   string
	logLevel string
}

func (f *workloadServeFlags) bind(cmd *cobra.Command, withKBS bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.tee.manifest, "manifest", "", "workload manifest (JSON)")
	fl.StringVar(&f.tee.listen, "listen", "127.0.0.1:8443", "address to listen on, host:port")
	fl.BoolVar(&f.tee.emulated, "emulated", false, "run in the emulated SEV-SNP TEE (development only)")
	fl.StringVar(&f.tee.emulatorDir, "emulator-dir", "", "with --emulated, directory of the emulator's keys and development root (ark.pem), which parties and the key broker pass as --trust-anchor; an existing emulator there is reused")
	fl.StringVar(&f.tee.measurement, "measurement", "", "with --emulated, the launch measurement (hex, 48 bytes) of a new emulator; default: SHA-384 of this executable")
	fl.StringArrayVar(&f.tee.collateral, "collateral", nil, "collateral with which a hardware TEE verifies its own evidence at start; repeatable")
	if withKBS {
		fl.StringVar(&f.kbsURL, "kbs", "", "key broker URL, such as http://127.0.0.1:8080 (cloister serve)")
	}
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

func (f *workloadServeFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageError("invalid --log-level %q: use debug, info, warn or error", f.logLevel)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}

// open opens the TEE bound to digest and listens on --listen.
func (f *workloadServeFlags) open(ctx context.Context, digest workload.Digest) (*workload.TEE, net.Listener, error) {
	opts, err := f.tee.teeOptions()
	if err != nil {
		return nil, nil, err
	}
	tee, err := workload.OpenTEE(ctx, digest, opts)
	if err != nil {
		return nil, nil, rejected(err)
	}
	ln, err := net.Listen("tcp", f.tee.listen)
	if err != nil {
		return nil, nil, usageError("--listen: %v", err)
	}
	return tee, ln, nil
}

// kbsClient returns a key broker client that attests with tee.
func (f *workloadServeFlags) kbsClient(tee *workload.TEE) (*kbs.Client, error) {
	if f.kbsURL == "" {
		return nil, usageError("--kbs is required: the key broker that releases this workload's key")
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	return &kbs.Client{URL: f.kbsURL, Attester: tee.Attester, HTTPClient: &http.Client{Jar: jar, Timeout: time.Minute}}, nil
}

// printWorkload prints what a party and the key broker need to trust the
// workload.
func printWorkload(w io.Writer, kind, name, addr string, digest workload.Digest, tee *workload.TEE) {
	label := "hardware TEE"
	if tee.Emulated() {
		label = "EMULATED SEV-SNP TEE (development root, proves no hardware)"
	}
	fmt.Fprintf(w, "%s %q serving on %s in an %s\n", kind, name, addr, label)
	printTEE(w, digest, tee)
}

// serveWorkload reads the manifest with parse, opens the TEE bound to its
// digest and the listener, and calls run until SIGINT or SIGTERM cancels
// its context.
func serveWorkload[M any](cmd *cobra.Command, f *workloadServeFlags, parse func([]byte) (M, workload.Digest, error),
	run func(ctx context.Context, tee *workload.TEE, ln net.Listener, log *slog.Logger, m M, digest workload.Digest) error) error {
	log, err := f.logger()
	if err != nil {
		return err
	}
	m, digest, err := readWorkloadManifest(f.tee.manifest, parse)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tee, ln, err := f.open(ctx, digest)
	if err != nil {
		return err
	}
	defer ln.Close()
	return run(ctx, tee, ln, log, m, digest)
}

// workloadPartyFlags are the flags of the party-side commands.
type workloadPartyFlags struct {
	manifest      string
	key           string
	addr          string
	measurement   string
	trustAnchors  []string
	collateral    []string
	allowEmulated bool
	timeout       time.Duration
}

func (f *workloadPartyFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.manifest, "manifest", "", "the workload manifest (JSON) this party agreed to")
	fl.StringVar(&f.key, "key", "", "this party's PEM private key, whose SHA-256 the manifest lists")
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8443", "the workload's host:port")
	fl.StringVar(&f.measurement, "measurement", "", "expected launch measurement of the workload (hex); required")
	fl.StringArrayVar(&f.trustAnchors, "trust-anchor", nil, "root certificate to trust explicitly, such as an emulated TEE's development root; repeatable")
	fl.StringArrayVar(&f.collateral, "collateral", nil, "directory or file of collateral for the workload's evidence; repeatable")
	fl.BoolVar(&f.allowEmulated, "allow-emulated", false, "accept an emulated TEE (development only)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "time limit of the command")
}

// client returns a workload client that expects the manifest digest.
func (f *workloadPartyFlags) client(digest workload.Digest) (*workload.Client, error) {
	if f.key == "" {
		return nil, usageError("--key is required")
	}
	if f.measurement == "" {
		return nil, usageError("--measurement is required: pass the launch measurement of the workload build the parties agreed to")
	}

	key, err := workload.LoadKey(f.key)
	if err != nil {
		return nil, usageError("--key: %v", err)
	}
	identity, err := workload.ClientCertificate(key, "party")
	if err != nil {
		return nil, err
	}
	measurement, err := attest.ParseHex(f.measurement)
	if err != nil {
		return nil, usageError("--measurement: %v", err)
	}

	anchors, err := loadCollateral("--trust-anchor", f.trustAnchors)
	if err != nil {
		return nil, err
	}
	coll, err := loadCollateral("--collateral", f.collateral)
	if err != nil {
		return nil, err
	}

	c, err := workload.NewClient(f.addr, workload.Expect{
		Manifest:    digest,
		Measurement: measurement,
		Attest:      attest.Options{Collateral: coll, TrustAnchors: anchors},
		Appraise:    appraise.Options{AllowEmulated: f.allowEmulated},
	}, identity)
	if err != nil {
		return nil, rejected(err)
	}
	return c, nil
}

// partyClient verifies --manifest with parse and returns wrap of a
// workload client that expects the manifest's digest.
func partyClient[M, C any](f *workloadPartyFlags, parse func([]byte) (M, workload.Digest, error), wrap func(*workload.Client) C) (C, error) {
	var zero C
	_, digest, err := readWorkloadManifest(f.manifest, parse)
	if err != nil {
		return zero, err
	}
	wc, err := f.client(digest)
	if err != nil {
		return zero, err
	}
	return wrap(wc), nil
}

// callWorkload runs call within --timeout and prints its result as JSON.
// A failed call is a rejection (exit status 1).
func callWorkload(cmd *cobra.Command, f *workloadPartyFlags, call func(ctx context.Context) (any, error)) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	v, err := call(ctx)
	if err != nil {
		return rejected(err)
	}
	return printJSON(cmd.OutOrStdout(), v)
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
      --emulator-dir /tmp/fl-tee --listen 127.0.0.1:8443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serveWorkload(cmd, &f, aggregate.ParseManifest, func(ctx context.Context, tee *workload.TEE, ln net.Listener, log *slog.Logger, m *aggregate.Manifest, digest workload.Digest) error {
				printWorkload(cmd.OutOrStdout(), "aggregation", m.Name, ln.Addr().String(), digest, tee)
				return aggregate.Serve(ctx, ln, tee, m, digest, log)
			})
		},
	}
	f.bind(cmd, false)
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
	f.bind(cmd)
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
	f.bind(cmd)
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
	f.bind(cmd)
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
	f.bind(cmd)
	return cmd
}
