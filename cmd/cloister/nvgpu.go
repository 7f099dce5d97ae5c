package main

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/emudir"

	// Importing nvgpu also registers the NVIDIA GPU verifier with attest
	// for verify and inspect.
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

func init() { registerEmulate(newEmulateNVGPUCmd) }

func newEmulateNVGPUCmd() *cobra.Command {
	var (
		out   string
		gpus  int
		nonce string
	)
	cmd := &cobra.Command{
		Use:   "nvidia-gpu --out DIR [--gpus N] [--nonce HEX]",
		Short: "Write NVIDIA GPU evidence from emulated Hopper GPUs, with development RIMs and roots",
		Long: `Generate a development NVIDIA Device Identity CA with a device certificate
chain for each GPU, and a development RIM root with a RIM signing
certificate. Write the SPDM GET_MEASUREMENTS report of each GPU for one
nonce, and a driver and a VBIOS RIM whose golden values are the reports'
measurements:

  DIR/gpu-evidence.json   the evidence: one entry per GPU, report and chain
  DIR/collateral/         the signed driver and VBIOS RIMs, for --collateral
  DIR/dev-root/           the development Device Identity CA and RIM root,
                          both needed with --trust-anchor nvidia-gpu=
  DIR/emulator/           the keys (mode 0600) and certificates, to keep or delete

The evidence proves the format and the nonce, never NVIDIA hardware.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("--out is required: the directory to write the evidence, RIMs and development roots to")
			}
			if gpus < 1 || gpus > nvgpu.MaxEmulatedGPUs {
				return usageError("--gpus is %d; use 1 to %d", gpus, nvgpu.MaxEmulatedGPUs)
			}
			n, err := gpuNonce(nonce)
			if err != nil {
				return err
			}
			paths, err := nvgpu.EmulateToDir(cmd.Context(), nvgpu.EmulatorOptions{GPUs: gpus}, n, out)
			if err != nil {
				return usageError("%v", err)
			}
			printEmulatedGPU(cmd.OutOrStdout(), paths, n, gpus)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "", "directory to write the evidence, RIMs and development roots to")
	fl.IntVar(&gpus, "gpus", 1, fmt.Sprintf("number of emulated GPUs, 1 to %d", nvgpu.MaxEmulatedGPUs))
	fl.StringVar(&nonce, "nonce", "", "the 32-byte nonce of the GPUs' SPDM request (hex; default: random)")
	return cmd
}

// gpuNonce decodes --nonce, which must be 32 bytes, or returns a random
// nonce when it is empty.
func gpuNonce(text string) ([]byte, error) {
	if text == "" {
		n := make([]byte, nvgpu.NonceSize)
		_, err := rand.Read(n)
		return n, err
	}
	n, err := attest.ParseHex(text)
	if err != nil {
		return nil, usageError("--nonce: %v", err)
	}
	if len(n) != nvgpu.NonceSize {
		return nil, usageError("--nonce is %d bytes; an SPDM nonce is %d bytes (%d hex digits)", len(n), nvgpu.NonceSize, 2*nvgpu.NonceSize)
	}
	return n, nil
}

// printEmulatedGPU writes that the evidence is emulated and the `cloister
// verify` command line that accepts it, with the RIMs and both development
// roots scoped to nvidia-gpu.
func printEmulatedGPU(w io.Writer, p *emudir.Paths, nonce []byte, gpus int) {
	printEmulatedHeader(w, fmt.Sprintf("NVIDIA GPU evidence (%d GPUs)", gpus), p)
	fmt.Fprintf(w, "verify it with:\n  cloister verify --collateral %s=%s --trust-anchor %s=%s --allow-emulated --nonce %s %s\n",
		attest.TEENVGPU, p.Collateral, attest.TEENVGPU, p.Root, attest.Hex(nonce), p.Evidence)
}
