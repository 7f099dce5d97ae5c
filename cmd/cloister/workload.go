package main

// The steps that the commands of the confidential workloads (cleanroom,
// aggregate, custody, modelserve) share: reading a manifest, the party
// key, the TEE and serve flags, and the party-side client flags.

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/agent"
	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/tee/nvgpu"
	"github.com/cloister-dev/cloister/workload"
)

// manifestParser is a function that validates a manifest file and
// returns it with its digest, such as aggregate.ParseManifest.
type manifestParser[M any] func(raw []byte) (M, workload.Digest, error)

// readWorkloadManifest reads the manifest file path and parses it with
// parse. It returns the file's bytes too, for clients that parse the
// manifest again.
func readWorkloadManifest[M any](path string, parse manifestParser[M]) ([]byte, M, workload.Digest, error) {
	var zero M
	if path == "" {
		return nil, zero, workload.Digest{}, usageError("--manifest is required")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, zero, workload.Digest{}, usageError("--manifest: %v", err)
	}
	m, d, err := parse(raw)
	if err != nil {
		return nil, zero, d, usageError("--manifest %s: %v", path, err)
	}
	return raw, m, d, nil
}

// rejected marks a failed exchange with the workload (exit code 1).
func rejected(err error) error { return &exitError{code: exitRejected, err: err} }

// writeNewFile creates path with mode 0600 and fails when it exists, so
// that a key is never overwritten.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// newManifestHashCmd prints the digest of a manifest that parse accepts.
func newManifestHashCmd[M any](parse manifestParser[M]) *cobra.Command {
	var manifest string
	cmd := &cobra.Command{
		Use:   "hash",
		Short: "Validate a manifest and print its SHA-256, the value bound as HOST_DATA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, _, d, err := readWorkloadManifest(manifest, parse)
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

// newPartyKeygenCmd writes a new party key and prints the SHA-256 of its
// public key, the key_sha256 of every workload manifest.
func newPartyKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Generate a party key and print the key_sha256 to list in the manifest",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("--out is required")
			}
			key, pemBytes, err := workload.GenerateKey()
			if err != nil {
				return err
			}
			if err := writeNewFile(out, pemBytes); err != nil {
				return usageError("--out: %v", err)
			}
			h, err := workload.KeyHash(key.Public())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), h)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the PEM private key to (created with mode 0600, never overwritten)")
	return cmd
}

// teeFlags are the flags that choose the TEE a workload runs in.
type teeFlags struct {
	emulated     bool
	emulatorDir  string
	measurement  string
	collateral   []string
	emulatedGPUs int
}

// options returns the workload.TEEOptions of the flags.
func (f teeFlags) options() (workload.TEEOptions, error) {
	o := workload.TEEOptions{Emulated: f.emulated, EmulatorDir: f.emulatorDir, EmulatedGPUs: f.emulatedGPUs}
	if !f.emulated && (f.emulatorDir != "" || f.measurement != "") {
		return o, usageError("--emulator-dir and --measurement need --emulated")
	}
	if f.measurement != "" {
		m, err := attest.ParseHex(f.measurement)
		if err != nil {
			return o, usageError("--measurement: %v", err)
		}
		o.Measurement = m
	}
	coll, err := loadCollateral("--collateral", f.collateral, false)
	if err != nil {
		return o, err
	}
	o.Verify = attest.Options{Collateral: coll}
	return o, nil
}

// printTEE prints what a party and the key broker need to trust the
// workload's TEE.
func printTEE(w io.Writer, digest workload.Digest, tee *workload.TEE) {
	fmt.Fprintf(w, "  manifest sha256: %s (bound as host data)\n", digest)
	fmt.Fprintf(w, "  measurement:     %s\n", tee.Claims.Measurement)
	if tee.RootPath != "" {
		fmt.Fprintf(w, "  trust anchor:    %s\n", tee.RootPath)
	}
	if gpus := tee.GPUs; gpus != nil {
		count := gpus.Emulator.GPUCount()
		noun := "NVIDIA GPUs"
		if count == 1 {
			noun = "NVIDIA GPU"
		}
		fmt.Fprintf(w, "  EMULATED GPUs:   %d %s, evidence sent only to the key broker (development roots, prove no hardware)\n", count, noun)
		for _, root := range gpus.RootPaths {
			fmt.Fprintf(w, "  GPU root:        %s\n", root)
		}
		if gpus.RIMDir != "" {
			fmt.Fprintf(w, "  GPU RIMs:        %s\n", gpus.RIMDir)
		}
	}
}

// newWorkloadEmulateCmd creates the emulated TEE of a manifest ahead of
// serve, so that the key broker, the attestation service and the parties
// can trust its root before the workload starts.
func newWorkloadEmulateCmd[M any](kind string, parse manifestParser[M]) *cobra.Command {
	var manifest string
	var f teeFlags
	cmd := &cobra.Command{
		Use:   "emulate --manifest M --emulator-dir DIR",
		Short: "Create the emulated SEV-SNP TEE of a manifest and print its root and measurement",
		Long: `Create an emulated SEV-SNP TEE whose HOST_DATA is the manifest's SHA-256 and save
its development keys in --emulator-dir, so that the key broker, the attestation
service and the parties can trust its development root (DIR/ark.pem) before the
workload starts. serve --emulated --emulator-dir DIR then runs in this TEE. An
existing directory is reopened and checked against the manifest.

With --emulated-gpus N, it also creates N emulated NVIDIA GPUs in
DIR/nvidia-gpu/. The key broker takes their two development roots as
--trust-anchor nvidia-gpu=FILE and their RIMs (DIR/nvidia-gpu/rims/) as
--collateral nvidia-gpu=DIR. serve --emulated-gpus N then sends their
evidence to the key broker.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.emulatorDir == "" {
				return usageError("--emulator-dir is required")
			}
			if err := checkEmulatedGPUCount(f.emulatedGPUs); err != nil {
				return err
			}
			_, _, digest, err := readWorkloadManifest(manifest, parse)
			if err != nil {
				return err
			}
			f.emulated = true
			opts, err := f.options()
			if err != nil {
				return err
			}
			tee, err := workload.OpenTEE(cmd.Context(), digest, opts)
			if err != nil {
				return rejected(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "EMULATED SEV-SNP TEE for a %s manifest saved in %s (development root, proves no hardware)\n", kind, f.emulatorDir)
			printTEE(cmd.OutOrStdout(), digest, tee)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&manifest, "manifest", "", "workload manifest (JSON)")
	fl.StringVar(&f.emulatorDir, "emulator-dir", "", "directory for the emulator's development keys and root (ark.pem)")
	fl.StringVar(&f.measurement, "measurement", "", "launch measurement (hex, 48 bytes); default: SHA-384 of this executable")
	fl.IntVar(&f.emulatedGPUs, "emulated-gpus", 0, fmt.Sprintf("also create this many emulated NVIDIA GPUs (1 to %d) in DIR/nvidia-gpu/, for serve --emulated-gpus (development only)", nvgpu.MaxEmulatedGPUs))
	return cmd
}

// workloadServeFlags are the flags of a workload's serve command.
type workloadServeFlags struct {
	manifest     string
	listen       string
	tee          teeFlags
	kbsURL       string
	kbsAllowHTTP bool
	nvidiaGPUs   bool
	logLevel     string
}

// bind registers the flags on cmd. kbsHelp, when not empty, is the help
// text of --kbs; otherwise the command has no --kbs flag.
func (f *workloadServeFlags) bind(cmd *cobra.Command, kbsHelp string) {
	fl := cmd.Flags()
	fl.StringVar(&f.manifest, "manifest", "", "workload manifest (JSON)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8443", "address to listen on, host:port")
	fl.BoolVar(&f.tee.emulated, "emulated", false, "run in the emulated SEV-SNP TEE (development only)")
	fl.StringVar(&f.tee.emulatorDir, "emulator-dir", "", "with --emulated, directory of the emulator's keys and development root (ark.pem), which parties and the key broker pass as --trust-anchor; an existing emulator there is reused")
	fl.StringVar(&f.tee.measurement, "measurement", "", "with --emulated, the launch measurement (hex, 48 bytes) of a new emulator; default: SHA-384 of this executable")
	fl.StringArrayVar(&f.tee.collateral, "collateral", nil, "collateral with which a hardware TEE verifies its own evidence at start; repeatable"+scopeHelp)
	if kbsHelp != "" {
		fl.StringVar(&f.kbsURL, "kbs", "", kbsHelp)
		fl.BoolVar(&f.kbsAllowHTTP, "kbs-allow-http", false, kbsAllowHTTPHelp)
		fl.IntVar(&f.tee.emulatedGPUs, "emulated-gpus", 0, emulatedGPUsHelp)
		fl.BoolVar(&f.nvidiaGPUs, "nvidia-gpus", false, nvidiaGPUsHelp)
	}
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

func (f *workloadServeFlags) logger() (*slog.Logger, error) { return jsonLogger(f.logLevel) }

// open opens the TEE bound to digest and listens on --listen.
func (f *workloadServeFlags) open(ctx context.Context, digest workload.Digest) (*workload.TEE, net.Listener, error) {
	opts, err := f.tee.options()
	if err != nil {
		return nil, nil, err
	}
	tee, err := workload.OpenTEE(ctx, digest, opts)
	if err != nil {
		return nil, nil, rejected(err)
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, nil, usageError("--listen: %v", err)
	}
	return tee, ln, nil
}

// kbsClient returns a key broker client that attests with tee and sends
// the evidence of tee's emulated GPUs beside it, or with --nvidia-gpus the
// evidence of the machine's GPUs. It logs to log when it attests without
// the TEE's event log. With --nvidia-gpus, the returned source sets the
// GPUs' ready state after the key broker released the first secret (see
// gpuReadySource).
func (f *workloadServeFlags) kbsClient(tee *workload.TEE, log *slog.Logger) (agent.SecretSource, error) {
	if f.kbsURL == "" {
		return nil, usageError("--kbs is required: the key broker that releases this workload's key")
	}
	if err := checkKBSURL(f.kbsURL, f.kbsAllowHTTP); err != nil {
		return nil, err
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	devices := tee.Devices()
	var gpus *nvgpu.NVMLAttester
	if f.nvidiaGPUs {
		if gpus, err = openNVIDIAGPUs(log); err != nil {
			return nil, err
		}
		devices = append(devices, gpus)
	}
	client := &kbs.Client{URL: f.kbsURL, Attester: tee.Attester, Devices: devices,
		HTTPClient: &http.Client{Jar: jar, Timeout: time.Minute}, Logger: log}
	if gpus != nil {
		return &gpuReadySource{source: client, gpus: gpus, log: log}, nil
	}
	return client, nil
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
func serveWorkload[M any](cmd *cobra.Command, f *workloadServeFlags, parse manifestParser[M],
	run func(ctx context.Context, tee *workload.TEE, ln net.Listener, log *slog.Logger, m M, digest workload.Digest) error) error {
	log, err := f.logger()
	if err != nil {
		return err
	}
	if err := checkEmulatedGPUs(f.tee.emulatedGPUs, f.tee.emulated, f.kbsURL); err != nil {
		return err
	}
	if err := checkNVIDIAGPUs(f.nvidiaGPUs, f.tee.emulatedGPUs, f.kbsURL); err != nil {
		return err
	}
	_, m, digest, err := readWorkloadManifest(f.manifest, parse)
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

// partyTimeout is the default --timeout of the party-side commands.
const partyTimeout = 2 * time.Minute

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

// bind registers the flags on cmd, with timeout as the default --timeout.
func (f *workloadPartyFlags) bind(cmd *cobra.Command, timeout time.Duration) {
	fl := cmd.Flags()
	fl.StringVar(&f.manifest, "manifest", "", "the workload manifest (JSON) this party agreed to")
	fl.StringVar(&f.key, "key", "", "this party's PEM private key, whose SHA-256 the manifest lists")
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8443", "the workload's host:port")
	fl.StringVar(&f.measurement, "measurement", "", "expected launch measurement of the workload (hex); required")
	fl.StringArrayVar(&f.trustAnchors, "trust-anchor", nil, "root certificate to trust explicitly, such as an emulated TEE's development root; repeatable"+scopeHelp)
	fl.StringArrayVar(&f.collateral, "collateral", nil, "directory or file of collateral for the workload's evidence; repeatable"+scopeHelp)
	fl.BoolVar(&f.allowEmulated, "allow-emulated", false, "accept an emulated TEE (development only)")
	fl.DurationVar(&f.timeout, "timeout", timeout, "time limit of the command")
}

// expect loads --key and returns it with the requirements on the
// workload that the flags set. The caller sets Expect.Manifest.
func (f *workloadPartyFlags) expect() (crypto.Signer, workload.Expect, error) {
	if f.key == "" {
		return nil, workload.Expect{}, usageError("--key is required")
	}
	if f.measurement == "" {
		return nil, workload.Expect{}, usageError("--measurement is required: pass the launch measurement of the workload build the parties agreed to")
	}

	key, err := workload.LoadKey(f.key)
	if err != nil {
		return nil, workload.Expect{}, usageError("--key: %v", err)
	}
	measurement, err := attest.ParseHex(f.measurement)
	if err != nil {
		return nil, workload.Expect{}, usageError("--measurement: %v", err)
	}

	anchors, err := loadCollateral("--trust-anchor", f.trustAnchors, false)
	if err != nil {
		return nil, workload.Expect{}, err
	}
	coll, err := loadCollateral("--collateral", f.collateral, false)
	if err != nil {
		return nil, workload.Expect{}, err
	}
	return key, workload.Expect{
		Measurement: measurement,
		Attest:      attest.Options{Collateral: coll, TrustAnchors: anchors},
		Appraise:    appraise.Options{AllowEmulated: f.allowEmulated},
	}, nil
}

// client returns a workload client that expects the manifest digest.
func (f *workloadPartyFlags) client(digest workload.Digest) (*workload.Client, error) {
	key, expect, err := f.expect()
	if err != nil {
		return nil, err
	}
	identity, err := workload.ClientCertificate(key, "party")
	if err != nil {
		return nil, err
	}
	expect.Manifest = digest
	c, err := workload.NewClient(f.addr, expect, identity)
	if err != nil {
		return nil, rejected(err)
	}
	return c, nil
}

// partyClient verifies --manifest with parse and returns wrap of a
// workload client that expects the manifest's digest.
func partyClient[M, C any](f *workloadPartyFlags, parse manifestParser[M], wrap func(*workload.Client) C) (C, error) {
	var zero C
	_, _, digest, err := readWorkloadManifest(f.manifest, parse)
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
