package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/modelserve"
)

func init() { register(newModelserveCmd) }

func newModelserveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "modelserve",
		Short: "Serve predictions of an encrypted model whose key only the attested workload receives",
		Long: `Protected model serving keeps a model's weights encrypted at rest
(AES-256-GCM). The key broker (cloister serve) releases the model key only to
the workload's launch measurement and manifest; the workload decrypts the
model in memory, checks its SHA-256 against the manifest, and serves
predictions over RA-TLS to the manifest's parties.

See docs/workloads/modelserve.md.`,
	}
	cmd.AddCommand(newManifestHashCmd(modelserve.ParseManifest), newPartyKeygenCmd(),
		newWorkloadEmulateCmd("model-serving", modelserve.ParseManifest), newModelserveEncryptCmd(),
		newModelserveServeCmd(), newModelserveInfoCmd(), newModelservePredictCmd())
	return cmd
}

func newModelserveEncryptCmd() *cobra.Command {
	var model, keyResource, out, keyOut string
	cmd := &cobra.Command{
		Use:   "encrypt --model MODEL.json --key-resource PATH --out MODEL.enc.json --key-out MODEL.key",
		Short: "Encrypt a model under a new random key and print its SHA-256 for the manifest",
		Long: `Validate a model (format cloister-mlp/v1), generate a random 32-byte key,
encrypt the model with AES-256-GCM for the key broker resource --key-resource,
and write the encrypted model and the key to new files (mode 0600). Print the
SHA-256 of the plaintext model, which the manifest's model_sha256 names.

Store the key at the key broker, then delete the key file:

  cloister secret put PATH --file MODEL.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if model == "" || keyResource == "" || out == "" || keyOut == "" {
				return usageError("--model, --key-resource, --out and --key-out are required")
			}
			plain, err := os.ReadFile(model)
			if err != nil {
				return usageError("--model: %v", err)
			}
			key := make([]byte, modelserve.KeySize)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			defer clear(key)
			enc, digest, err := modelserve.Encrypt(plain, key, keyResource)
			if err != nil {
				return usageError("--model %s: %v", model, err)
			}
			if err := writeNewFile(keyOut, key); err != nil {
				return usageError("--key-out: %v", err)
			}
			if err := writeNewFile(out, enc); err != nil {
				return usageError("--out: %v", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), workload.Digest(digest))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&model, "model", "", "model file (JSON, format cloister-mlp/v1)")
	fl.StringVar(&keyResource, "key-resource", "", "key broker resource path (repository/type/tag) that will hold the key")
	fl.StringVar(&out, "out", "", "file to write the encrypted model to (not overwritten)")
	fl.StringVar(&keyOut, "key-out", "", "file to write the 32-byte key to (mode 0600, not overwritten)")
	return cmd
}

func newModelserveServeCmd() *cobra.Command {
	var f workloadServeFlags
	var model string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the model-serving workload inside the TEE",
		Long: `Run the model-serving workload of a manifest over RA-TLS. At start it attests
to the key broker (--kbs), fetches the model key named in the manifest,
decrypts --model in memory, checks its SHA-256 against the manifest's
model_sha256, and drops the key. Only the manifest's parties can connect.

On hardware, the host must launch the TEE with the manifest's SHA-256
(cloister modelserve hash) as SEV-SNP HOST_DATA or TDX MRCONFIGID.`,
		Example: `  cloister modelserve serve --manifest serving.json --model xor-mlp.enc.json \
      --kbs http://127.0.0.1:8080 --emulated --emulator-dir dev-tee`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if model == "" {
				return usageError("--model is required: the encrypted model file")
			}
			return serveWorkload(cmd, &f, modelserve.ParseManifest, func(ctx context.Context, tee *workload.TEE, ln net.Listener, log *slog.Logger, m *modelserve.Manifest, digest workload.Digest) error {
				broker, err := f.kbsClient(tee, log)
				if err != nil {
					return err
				}
				s, err := modelserve.Open(ctx, m, model, broker, log)
				if err != nil {
					return rejected(err)
				}
				printWorkload(cmd.OutOrStdout(), "model serving", m.Name, ln.Addr().String(), digest, tee)
				return modelserve.Serve(ctx, ln, tee, s, log)
			})
		},
	}
	f.bind(cmd, "key broker URL, such as http://127.0.0.1:8080 (cloister serve)")
	cmd.Flags().StringVar(&model, "model", "", "encrypted model file, from cloister modelserve encrypt")
	return cmd
}

// modelserveClient returns a party client that expects --manifest.
func modelserveClient(f *workloadPartyFlags) (*modelserve.Client, error) {
	return partyClient(f, modelserve.ParseManifest, modelserve.NewClient)
}

func newModelserveInfoCmd() *cobra.Command {
	var f workloadPartyFlags
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Verify the workload and print the served model's name, shape and SHA-256",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := modelserveClient(&f)
			if err != nil {
				return err
			}
			return callWorkload(cmd, &f, func(ctx context.Context) (any, error) { return c.Info(ctx) })
		},
	}
	f.bind(cmd, partyTimeout)
	return cmd
}

func newModelservePredictCmd() *cobra.Command {
	var f workloadPartyFlags
	var input string
	cmd := &cobra.Command{
		Use:   "predict --input '[[x1, x2, ...], ...]'",
		Short: "Verify the workload and print its predictions for a batch of inputs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var inputs [][]float64
			if err := json.Unmarshal([]byte(input), &inputs); err != nil {
				return usageError("invalid --input: %v: give a JSON array of input arrays, such as [[0,1],[1,1]]", err)
			}
			c, err := modelserveClient(&f)
			if err != nil {
				return err
			}
			return callWorkload(cmd, &f, func(ctx context.Context) (any, error) {
				out, err := c.Predict(ctx, inputs)
				return modelserve.PredictResponse{Outputs: out}, err
			})
		},
	}
	f.bind(cmd, partyTimeout)
	cmd.Flags().StringVar(&input, "input", "", "batch of inputs as a JSON array of arrays")
	return cmd
}
