package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/cleanroom"
)

func init() { register(newCleanroomCmd) }

func newCleanroomCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cleanroom",
		Short: "Run a data clean room: one agreed SQL query over several parties' tables, in a TEE",
		Long: `A data clean room runs one SQL query, fixed in a manifest that every party
agreed to, over tables that the parties upload to a workload in a TEE. The
workload returns only the aggregate result, suppresses groups smaller than
the manifest's minimum, and erases the inputs after the query ran.

The manifest's SHA-256 is bound into the TEE's evidence (SEV-SNP HOST_DATA),
so a party that verifies the workload before uploading also verifies the
agreement. See docs/workloads/cleanroom.md.`,
	}
	cmd.AddCommand(newCleanroomEmulateCmd(), newCleanroomServeCmd(), newCleanroomUploadCmd(), newCleanroomResultCmd(),
		newCleanroomStatusCmd(), newCleanroomHashCmd(), newCleanroomKeygenCmd())
	return cmd
}

// readManifest reads and validates a manifest file.
func readManifest(path string) ([]byte, *cleanroom.Manifest, workload.Digest, error) {
	if path == "" {
		return nil, nil, workload.Digest{}, usageError("--manifest is required")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, workload.Digest{}, usageError("--manifest: %v", err)
	}
	m, d, err := cleanroom.ParseManifest(raw)
	if err != nil {
		return nil, nil, d, usageError("--manifest %s: %v", path, err)
	}
	return raw, m, d, nil
}

func newCleanroomHashCmd() *cobra.Command {
	var manifest string
	cmd := &cobra.Command{
		Use:   "hash",
		Short: "Validate a manifest and print its SHA-256, the value bound as HOST_DATA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, _, d, err := readManifest(manifest)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	cmd.Flags().StringVar(&manifest, "manifest", "", "clean-room manifest (JSON)")
	return cmd
}

func newCleanroomKeygenCmd() *cobra.Command {
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
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return usageError("--out: %v", err)
			}
			if _, err := f.Write(pemBytes); err != nil {
				f.Close()
				return usageError("--out: %v", err)
			}
			if err := f.Close(); err != nil {
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

func newCleanroomEmulateCmd() *cobra.Command {
	var manifest, dir, measurement string
	cmd := &cobra.Command{
		Use:   "emulate --manifest M --emulator-dir DIR",
		Short: "Create the emulated SEV-SNP TEE of a manifest and print its root and measurement",
		Long: `Create an emulated SEV-SNP TEE whose HOST_DATA is the manifest's SHA-256 and save
its development keys in --emulator-dir, so that the attestation service and the
parties can trust its development root (DIR/ark.pem) before the workload starts.
cloister cleanroom serve --emulated --emulator-dir DIR then runs in this TEE.
An existing directory is reopened and checked against the manifest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usageError("--emulator-dir is required")
			}
			_, m, digest, err := readManifest(manifest)
			if err != nil {
				return err
			}
			f := cleanroomServeFlags{emulated: true, emulatorDir: dir, measurement: measurement}
			opts, err := f.teeOptions()
			if err != nil {
				return err
			}
			tee, err := workload.OpenTEE(cmd.Context(), digest, opts)
			if err != nil {
				return &exitError{code: exitRejected, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "EMULATED SEV-SNP TEE for clean room %q saved in %s (development root, proves no hardware)\n", m.Name, dir)
			printTEE(cmd.OutOrStdout(), digest, tee)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&manifest, "manifest", "", "clean-room manifest (JSON)")
	fl.StringVar(&dir, "emulator-dir", "", "directory for the emulator's development keys and root (ark.pem)")
	fl.StringVar(&measurement, "measurement", "", "launch measurement (hex, 48 bytes); default: SHA-384 of this executable")
	return cmd
}

type cleanroomServeFlags struct {
	manifest    string
	listen      string
	emulated    bool
	emulatorDir string
	measurement string
	collateral  []string
	kbsURL      string
	secret      string
	keepRunning bool
	logLevel    string
}

func newCleanroomServeCmd() *cobra.Command {
	var f cleanroomServeFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the clean-room workload inside the TEE",
		Long: `Run the clean-room workload of a manifest over RA-TLS. Only the manifest's
parties can connect; each uploads its table once, the query runs when the last
table arrives, and the command exits after every recipient has read the result
(unless --keep-running), erasing the inputs.

On hardware, the host must launch the TEE with the manifest's SHA-256
(cloister cleanroom hash) as SEV-SNP HOST_DATA or TDX MRCONFIGID; the workload
checks its own evidence at start. With --emulated, the emulated SEV-SNP TEE
binds the digest itself and its evidence is labelled EMULATED.

With --kbs, the workload fetches a result key from the key broker through the
KBS protocol, after attestation, and adds an HMAC-SHA256 of the result under
that key (field mac).`,
		Example: `  cloister cleanroom serve --manifest examples/cleanroom/manifest.json \
      --emulated --emulator-dir /tmp/cleanroom-tee --listen 127.0.0.1:8443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runCleanroomServe(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.manifest, "manifest", "", "clean-room manifest (JSON)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8443", "address to listen on, host:port")
	fl.BoolVar(&f.emulated, "emulated", false, "run in the emulated SEV-SNP TEE (development only)")
	fl.StringVar(&f.emulatorDir, "emulator-dir", "", "with --emulated, directory of the emulator's keys and development root (ark.pem), which parties pass as --trust-anchor; an existing emulator there is reused")
	fl.StringVar(&f.measurement, "measurement", "", "with --emulated, the launch measurement (hex, 48 bytes) of a new emulator; default: SHA-384 of this executable")
	fl.StringArrayVar(&f.collateral, "collateral", nil, "collateral with which a hardware TEE verifies its own evidence at start; repeatable")
	fl.StringVar(&f.kbsURL, "kbs", "", "key broker URL, such as http://127.0.0.1:8080, to fetch the result key from")
	fl.StringVar(&f.secret, "secret", "default/cleanroom/result-key", "with --kbs, resource path of the result key")
	fl.BoolVar(&f.keepRunning, "keep-running", false, "keep serving after every recipient has read the result")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func runCleanroomServe(cmd *cobra.Command, f cleanroomServeFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageError("invalid --log-level %q: use debug, info, warn or error", f.logLevel)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	_, m, digest, err := readManifest(f.manifest)
	if err != nil {
		return err
	}
	opts, err := f.teeOptions()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tee, err := workload.OpenTEE(ctx, digest, opts)
	if err != nil {
		return &exitError{code: exitRejected, err: err}
	}
	resultKey, err := f.fetchResultKey(ctx, tee)
	if err != nil {
		return &exitError{code: exitRejected, err: err}
	}
	room, err := cleanroom.NewRoom(ctx, m, digest, cleanroom.Options{ResultKey: resultKey, Log: log})
	if err != nil {
		return usageError("%v", err)
	}
	defer room.Close()

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return usageError("--listen: %v", err)
	}
	printServing(cmd.OutOrStdout(), m, digest, tee, ln.Addr().String())

	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !f.keepRunning {
		go func() {
			select {
			case <-room.Done():
				// Give the last response time to reach the recipient.
				time.Sleep(time.Second)
				cancel()
			case <-serveCtx.Done():
			}
		}()
	}
	if err := cleanroom.Serve(serveCtx, ln, tee, room, log); err != nil {
		return err
	}
	if err := room.Close(); err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), "clean room closed: inputs erased, result and result key dropped")
	return nil
}

func (f cleanroomServeFlags) teeOptions() (workload.TEEOptions, error) {
	o := workload.TEEOptions{Emulated: f.emulated, EmulatorDir: f.emulatorDir}
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
	coll, err := loadCollateral("--collateral", f.collateral)
	if err != nil {
		return o, err
	}
	o.Verify = attest.Options{Collateral: coll}
	return o, nil
}

func (f cleanroomServeFlags) fetchResultKey(ctx context.Context, tee *workload.TEE) ([]byte, error) {
	if f.kbsURL == "" {
		return nil, nil
	}
	c := &kbs.Client{URL: f.kbsURL, Attester: tee.Attester}
	key, err := c.Resource(ctx, f.secret)
	if err != nil {
		return nil, fmt.Errorf("fetching the result key %s from %s: %w", f.secret, f.kbsURL, err)
	}
	return key, nil
}

func printServing(w io.Writer, m *cleanroom.Manifest, digest workload.Digest, tee *workload.TEE, addr string) {
	label := "hardware TEE"
	if tee.Emulated() {
		label = "EMULATED SEV-SNP TEE (development root, proves no hardware)"
	}
	fmt.Fprintf(w, "clean room %q serving on %s in an %s\n", m.Name, addr, label)
	printTEE(w, digest, tee)
}

func printTEE(w io.Writer, digest workload.Digest, tee *workload.TEE) {
	fmt.Fprintf(w, "  manifest sha256: %s (bound as host data)\n", digest)
	fmt.Fprintf(w, "  measurement:     %s\n", tee.Claims.Measurement)
	if tee.RootPath != "" {
		fmt.Fprintf(w, "  trust anchor:    %s\n", tee.RootPath)
	}
}

// cleanroomPartyFlags are the flags of the party-side commands.
type cleanroomPartyFlags struct {
	manifest      string
	party         string
	key           string
	addr          string
	measurement   string
	trustAnchors  []string
	collateral    []string
	allowEmulated bool
	timeout       time.Duration
}

func (f *cleanroomPartyFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.manifest, "manifest", "", "the clean-room manifest (JSON) this party agreed to")
	fl.StringVar(&f.party, "party", "", "this party's name in the manifest")
	fl.StringVar(&f.key, "key", "", "this party's PEM private key, whose SHA-256 the manifest lists")
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8443", "the workload's host:port")
	fl.StringVar(&f.measurement, "measurement", "", "expected launch measurement of the workload (hex); required")
	fl.StringArrayVar(&f.trustAnchors, "trust-anchor", nil, "root certificate to trust explicitly, such as an emulated TEE's development root; repeatable")
	fl.StringArrayVar(&f.collateral, "collateral", nil, "directory or file of collateral for the workload's evidence; repeatable")
	fl.BoolVar(&f.allowEmulated, "allow-emulated", false, "accept an emulated TEE (development only)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "time limit of the command")
}

func (f *cleanroomPartyFlags) client() (*cleanroom.Client, error) {
	if f.party == "" || f.key == "" {
		return nil, usageError("--party and --key are required")
	}
	if f.measurement == "" {
		return nil, usageError("--measurement is required: pass the launch measurement of the workload build the parties agreed to")
	}
	raw, _, _, err := readManifest(f.manifest)
	if err != nil {
		return nil, err
	}

	key, err := workload.LoadKey(f.key)
	if err != nil {
		return nil, usageError("--key: %v", err)
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

	c, err := cleanroom.NewClient(cleanroom.ClientConfig{
		Addr: f.addr, Manifest: raw, Party: f.party, Key: key,
		Expect: workload.Expect{
			Measurement: measurement,
			Attest:      attest.Options{Collateral: coll, TrustAnchors: anchors},
			Appraise:    appraise.Options{AllowEmulated: f.allowEmulated},
		},
	})
	if err != nil {
		return nil, &exitError{code: exitRejected, err: err}
	}
	return c, nil
}

// rejected marks a failed exchange with the workload (exit code 1).
func rejected(err error) error { return &exitError{code: exitRejected, err: err} }

func newCleanroomUploadCmd() *cobra.Command {
	var f cleanroomPartyFlags
	var table string
	cmd := &cobra.Command{
		Use:   "upload --table NAME FILE.csv",
		Short: "Verify the workload and upload this party's table",
		Long: `Verify the clean-room workload (evidence, measurement and manifest digest) and
upload one CSV file with a header, as the manifest defines the table. Nothing
is sent unless the verification succeeds.`,
		Example: `  cloister cleanroom upload --manifest examples/cleanroom/manifest.json \
      --party bank-a --key examples/cleanroom/keys/bank-a.pem \
      --measurement HEX --trust-anchor /tmp/cleanroom-tee/ark.pem --allow-emulated \
      --table bank_a_fraud examples/cleanroom/bank_a_fraud.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if table == "" {
				return usageError("--table is required")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			file, err := os.Open(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			defer file.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			up, err := c.Upload(ctx, table, file)
			if err != nil {
				return rejected(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "uploaded %d rows to table %s after verifying the workload\n", up.Rows, up.Table)
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&table, "table", "", "the manifest table that the file fills")
	return cmd
}

func newCleanroomResultCmd() *cobra.Command {
	var f cleanroomPartyFlags
	var resultKey string
	cmd := &cobra.Command{
		Use:   "result",
		Short: "Verify the workload and print the clean-room result as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			_, raw, err := c.Result(ctx)
			if err != nil {
				return rejected(err)
			}
			if resultKey != "" {
				key, err := os.ReadFile(resultKey)
				if err != nil {
					return usageError("--result-key: %v", err)
				}
				if err := cleanroom.VerifyResultMAC(raw, key); err != nil {
					return rejected(err)
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "result mac verified")
			}
			return printIndented(cmd.OutOrStdout(), raw)
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&resultKey, "result-key", "", "file with the result key, to verify the result's mac")
	return cmd
}

func newCleanroomStatusCmd() *cobra.Command {
	var f cleanroomPartyFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Verify the workload and list the tables it still waits for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			s, err := c.Status(ctx)
			if err != nil {
				return rejected(err)
			}
			out, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}

func printIndented(w io.Writer, raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return errors.New("the workload sent a result that is not JSON")
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(out))
	return err
}
