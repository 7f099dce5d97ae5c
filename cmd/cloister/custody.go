package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/custody"
)

func init() { register(newCustodyCmd) }

func newCustodyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "custody",
		Short: "Hold signing keys in a TEE, sealed under a key the key broker releases only to this workload",
		Long: `Key custody generates Ed25519, ECDSA P-256 and secp256k1 signing keys inside
the TEE, stores them only sealed (AES-256-GCM) under a sealing key that the
key broker (cloister serve) releases only to the workload's launch
measurement and manifest, and signs for the parties that each key's policy
in the manifest lists. Private keys never leave; public keys can be exported.

See docs/workloads/custody.md.`,
	}
	cmd.AddCommand(newManifestHashCmd(custody.ParseManifest), newPartyKeygenCmd(),
		newWorkloadEmulateCmd("custody", custody.ParseManifest), newReleasePolicyCmd(),
		newCustodyServeCmd(), newCustodyKeysCmd(), newCustodySignCmd())
	return cmd
}

func newReleasePolicyCmd() *cobra.Command {
	var releases []string
	var others bool
	var tee string
	cmd := &cobra.Command{
		Use:   "release-policy --release PATH:MEASUREMENT:MANIFEST_SHA256[:gpu] ...",
		Short: "Print a key broker resource policy that releases each key only to its workload",
		Long: `Print a Rego resource policy for cloister serve that releases each --release
resource only to an affirming, non-debug attestation with that launch
measurement (hex) and that manifest SHA-256 in its host data (SEV-SNP
HOST_DATA, or TDX MRCONFIGID with --tee tdx). The key broker applies one
resource policy, named "default", so pass every protected resource of the
deployment at once and store the output with:

  cloister policy set --kind resource default FILE

A fourth field gpu also requires attested NVIDIA GPUs for that resource: the
token's GPU appraisal (submodule gpu0) must be affirming and its rim check
passed, so that NVIDIA's signed RIMs vouched for the GPUs' driver and VBIOS.
The workload sends its GPUs' evidence with its attestation (serve
--emulated-gpus N for emulated GPUs), and the key broker needs the GPUs' RIMs
(--collateral nvidia-gpu=DIR).

Resources that no rule names are denied, unless --others keeps the built-in
rule for them (any affirming attestation). When the policy denies a request,
its reasons name each check that failed, such as a measurement or host data
that does not match the rule or a missing GPU appraisal, with the value and
the expected value, and the broker writes them to its log and its audit
record.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(releases) == 0 {
				return usageError("give at least one --release PATH:MEASUREMENT:MANIFEST_SHA256[:gpu]")
			}
			if tee != string(attest.TEESNP) && tee != string(attest.TEETDX) {
				return usageError("invalid --tee %q: use snp or tdx, the TEEs that bind a manifest digest at launch", tee)
			}
			var rules []custody.Release
			for _, r := range releases {
				rule, err := parseRelease(r)
				if err != nil {
					return err
				}
				rule.TEE = attest.TEE(tee)
				rules = append(rules, rule)
			}
			policy, err := custody.ReleasePolicy(rules, others)
			if err != nil {
				return usageError("%v", err)
			}
			fmt.Fprint(cmd.OutOrStdout(), policy)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&releases, "release", nil, "resource path, launch measurement (hex) and manifest SHA-256, separated by colons, and optionally :gpu to require attested GPUs; repeatable")
	cmd.Flags().StringVar(&tee, "tee", "snp", "TEE of the workloads: snp or tdx")
	cmd.Flags().BoolVar(&others, "others", false, "release resources that no --release names to any affirming attestation, as the built-in policy does")
	return cmd
}

// parseRelease parses the value r of --release,
// PATH:MEASUREMENT:MANIFEST_SHA256 with an optional fourth field gpu.
func parseRelease(r string) (custody.Release, error) {
	parts := strings.Split(r, ":")
	if len(parts) != 3 && len(parts) != 4 {
		return custody.Release{}, usageError("invalid --release %q: use PATH:MEASUREMENT:MANIFEST_SHA256, or PATH:MEASUREMENT:MANIFEST_SHA256:gpu to require attested GPUs", r)
	}
	measurement, err := attest.ParseHex(parts[1])
	if err != nil {
		return custody.Release{}, usageError("invalid --release %q: the measurement is not hex (%v); give the launch measurement as hexadecimal, as cloister inspect prints it", r, err)
	}
	digest, err := workload.ParseDigest(parts[2])
	if err != nil {
		return custody.Release{}, usageError("invalid --release %q: the manifest digest is invalid (%v); give the manifest's SHA-256 as cloister custody hash prints it", r, err)
	}
	rule := custody.Release{Path: parts[0], Measurement: measurement, Manifest: digest}
	if len(parts) == 4 {
		if parts[3] != "gpu" {
			return custody.Release{}, usageError("invalid --release %q: the fourth field is %q; use gpu to require attested GPUs, or leave it out", r, parts[3])
		}
		rule.RequireGPU = true
	}
	return rule, nil
}

func newCustodyServeCmd() *cobra.Command {
	var f workloadServeFlags
	var keysDir string
	var createMissing bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the custody workload inside the TEE",
		Long: `Run the key custody workload of a manifest over RA-TLS. At start it attests to
the key broker (--kbs), fetches the sealing key named in the manifest, unseals
the keys in --keys-dir, then drops the sealing key. On the first start, when
--keys-dir holds no sealed key, it generates and seals the keys. Later, a
missing sealed file stops the start, because the host may have removed it,
unless --create-missing-keys asks for a new key. A key whose public_key the
manifest pins is never generated: a missing sealed file, or one that contains
another key, always stops the start (see custody keys --pinned-manifest).
Only the manifest's parties can connect, and each key signs only for its
signers.

On hardware, the host must launch the TEE with the manifest's SHA-256
(cloister custody hash) as SEV-SNP HOST_DATA or TDX MRCONFIGID.`,
		Example: `  cloister custody serve --manifest custody.json --keys-dir keys \
      --kbs http://127.0.0.1:8080 --emulated --emulator-dir dev-tee`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if keysDir == "" {
				return usageError("--keys-dir is required: the directory of the sealed key files")
			}
			return serveWorkload(cmd, &f, custody.ParseManifest, func(ctx context.Context, tee *workload.TEE, ln net.Listener, log *slog.Logger, m *custody.Manifest, digest workload.Digest) error {
				broker, err := f.kbsClient(tee, log)
				if err != nil {
					return err
				}
				s, err := custody.Open(ctx, m, keysDir, broker, log, custody.Options{CreateMissing: createMissing})
				if err != nil {
					return rejected(err)
				}
				printWorkload(cmd.OutOrStdout(), "custody", m.Name, ln.Addr().String(), digest, tee)
				return custody.Serve(ctx, ln, tee, s, log)
			})
		},
	}
	f.bind(cmd, "key broker URL, such as http://127.0.0.1:8080 (cloister serve)")
	cmd.Flags().StringVar(&keysDir, "keys-dir", "", "directory of the sealed key files (NAME.sealed.json), created with mode 0700")
	cmd.Flags().BoolVar(&createMissing, "create-missing-keys", false, "generate keys whose sealed file is missing also when --keys-dir holds other sealed keys (by default only on the first start); never a key whose public_key the manifest pins")
	return cmd
}

// custodyClient returns a party client that expects --manifest.
func custodyClient(f *workloadPartyFlags) (*custody.Client, error) {
	return partyClient(f, custody.ParseManifest, custody.NewClient)
}

func newCustodyKeysCmd() *cobra.Command {
	var f workloadPartyFlags
	var pin bool
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Verify the workload and print its public keys (base64) as JSON",
		Long: `Verify the custody workload and print its public keys as JSON. Each key's
public_key is standard base64 of the public key: PKIX DER for Ed25519 and ECDSA
P-256, compressed SEC 1 for secp256k1. The manifest's public_key field takes
the same value.

With --pinned-manifest, print the --manifest instead, with every key's
public_key set to the key that the verified workload uses. A workload
started with that manifest fails when a sealed file is missing or contains
another key, instead of generating a new one. The new manifest has another
SHA-256, so the key broker's release policy and the TEE's host data must
change to it; see docs/workloads/custody.md.`,
		Example: `  cloister custody keys --manifest custody.json --key alice.pem --addr 127.0.0.1:8443 \
      --measurement $M --pinned-manifest > custody-pinned.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if pin {
				return printPinnedManifest(cmd, &f)
			}
			c, err := custodyClient(&f)
			if err != nil {
				return err
			}
			return callWorkload(cmd, &f, func(ctx context.Context) (any, error) { return c.PublicKeys(ctx) })
		},
	}
	f.bind(cmd, partyTimeout)
	cmd.Flags().BoolVar(&pin, "pinned-manifest", false, "print --manifest with each key's public_key pinned to the workload's key, instead of the key list")
	return cmd
}

// printPinnedManifest reads the public keys of the verified workload,
// prints --manifest with them pinned, and reports the new manifest's
// SHA-256 on standard error.
func printPinnedManifest(cmd *cobra.Command, f *workloadPartyFlags) error {
	_, m, digest, err := readWorkloadManifest(f.manifest, custody.ParseManifest)
	if err != nil {
		return err
	}
	wc, err := f.client(digest)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	keys, err := custody.NewClient(wc).PublicKeys(ctx)
	if err != nil {
		return rejected(err)
	}
	pinned, err := m.PinPublicKeys(keys)
	if err != nil {
		return rejected(err)
	}

	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(pinned); err != nil {
		return err
	}
	pinnedDigest, err := workload.HashManifest(out.Bytes())
	if err != nil {
		return err
	}
	if _, err := cmd.OutOrStdout().Write(out.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "pinned %d public keys; the pinned manifest has SHA-256 %s. "+
		"Set the release policy and the TEE's host data to that digest before the workload restarts with it.\n", len(pinned.Keys), pinnedDigest)
	return nil
}

func newCustodySignCmd() *cobra.Command {
	var f workloadPartyFlags
	var keyName, message, messageFile string
	cmd := &cobra.Command{
		Use:   "sign --key-name NAME (--message TEXT | --message-file FILE)",
		Short: "Verify the workload, have it sign a message, and check the signature",
		Long: `Verify the custody workload, send a message to sign with the key NAME, check
the signature against the key's exported public key, and print the signature
in base64. Ed25519 signs the message; ECDSA P-256 and secp256k1 sign its
SHA-256 and return ASN.1 DER.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyName == "" {
				return usageError("--key-name is required")
			}
			msg := []byte(message)
			if messageFile != "" {
				if message != "" {
					return usageError("give --message or --message-file, not both")
				}
				var err error
				if msg, err = os.ReadFile(messageFile); err != nil {
					return usageError("--message-file: %v", err)
				}
			}
			c, err := custodyClient(&f)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			pub, err := c.PublicKey(ctx, keyName)
			if err != nil {
				return rejected(err)
			}
			resp, err := c.Sign(ctx, keyName, msg)
			if err != nil {
				return rejected(err)
			}
			if err := custody.VerifySignature(pub.Type, pub.PublicKey, msg, resp.Signature); err != nil {
				return rejected(fmt.Errorf("the workload's signature does not verify: %w", err))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "signed with %s (%s); the signature verifies with the exported public key\n", keyName, pub.Type)
			fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(resp.Signature))
			return nil
		},
	}
	f.bind(cmd, partyTimeout)
	fl := cmd.Flags()
	fl.StringVar(&keyName, "key-name", "", "name of the signing key in the manifest")
	fl.StringVar(&message, "message", "", "message to sign, as text")
	fl.StringVar(&messageFile, "message-file", "", "file whose bytes are the message to sign")
	return cmd
}
