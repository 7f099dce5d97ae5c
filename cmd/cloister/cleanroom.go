package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

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
	cmd.AddCommand(newWorkloadEmulateCmd("clean-room", cleanroom.ParseManifest), newCleanroomServeCmd(), newCleanroomUploadCmd(),
		newCleanroomResultCmd(), newCleanroomStatusCmd(), newManifestHashCmd(cleanroom.ParseManifest), newPartyKeygenCmd())
	return cmd
}

// cleanroomServeFlags are the flags of cloister cleanroom serve.
type cleanroomServeFlags struct {
	workloadServeFlags
	secret      string
	keepRunning bool
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
      --emulated --emulator-dir dev-tee --listen 127.0.0.1:8443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runCleanroomServe(cmd, &f) },
	}
	f.bind(cmd, "key broker URL, such as http://127.0.0.1:8080, to fetch the result key from")
	fl := cmd.Flags()
	fl.StringVar(&f.secret, "secret", "default/cleanroom/result-key", "with --kbs, resource path of the result key")
	fl.BoolVar(&f.keepRunning, "keep-running", false, "keep serving after every recipient has read the result")
	return cmd
}

func runCleanroomServe(cmd *cobra.Command, f *cleanroomServeFlags) error {
	return serveWorkload(cmd, &f.workloadServeFlags, cleanroom.ParseManifest, func(ctx context.Context, tee *workload.TEE, ln net.Listener, log *slog.Logger, m *cleanroom.Manifest, digest workload.Digest) error {
		resultKey, err := f.fetchResultKey(ctx, tee, log)
		if err != nil {
			return rejected(err)
		}
		room, err := cleanroom.NewRoom(ctx, m, digest, cleanroom.Options{ResultKey: resultKey, Log: log})
		if err != nil {
			return usageError("%v", err)
		}
		defer room.Close()
		printWorkload(cmd.OutOrStdout(), "clean room", m.Name, ln.Addr().String(), digest, tee)

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
	})
}

// fetchResultKey fetches the result key from --kbs, or returns nil
// without --kbs.
func (f *cleanroomServeFlags) fetchResultKey(ctx context.Context, tee *workload.TEE, log *slog.Logger) ([]byte, error) {
	if f.kbsURL == "" {
		return nil, nil
	}
	broker, err := f.kbsClient(tee, log)
	if err != nil {
		return nil, err
	}
	key, err := broker.Resource(ctx, f.secret)
	if err != nil {
		return nil, fmt.Errorf("fetching the result key %s from %s: %w", f.secret, f.kbsURL, err)
	}
	return key, nil
}

// cleanroomPartyFlags are the flags of the party-side clean-room
// commands.
type cleanroomPartyFlags struct {
	workloadPartyFlags
	party string
}

func (f *cleanroomPartyFlags) bind(cmd *cobra.Command) {
	f.workloadPartyFlags.bind(cmd, 5*time.Minute)
	cmd.Flags().StringVar(&f.party, "party", "", "this party's name in the manifest")
}

func (f *cleanroomPartyFlags) client() (*cleanroom.Client, error) {
	if f.party == "" || f.key == "" {
		return nil, usageError("--party and --key are required")
	}
	raw, _, _, err := readWorkloadManifest(f.manifest, cleanroom.ParseManifest)
	if err != nil {
		return nil, err
	}
	key, expect, err := f.expect()
	if err != nil {
		return nil, err
	}
	c, err := cleanroom.NewClient(cleanroom.ClientConfig{Addr: f.addr, Manifest: raw, Party: f.party, Key: key, Expect: expect})
	if err != nil {
		return nil, rejected(err)
	}
	return c, nil
}

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
      --measurement HEX --trust-anchor dev-tee/ark.pem --allow-emulated \
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
			return callWorkload(cmd, &f.workloadPartyFlags, func(ctx context.Context) (any, error) { return c.Status(ctx) })
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
		return fmt.Errorf("the workload sent a result that is not JSON: %v", err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(out))
	return err
}
