package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/dcap"
)

// Importing dcap also registers the DCAP verifier (SGX and TDX quotes) and
// the TDX hardware attester.
func init() {
	registerEmulate(func() *cobra.Command { return newEmulateDCAPCmd("sgx") })
	registerEmulate(func() *cobra.Command { return newEmulateDCAPCmd("tdx") })
}

func newEmulateDCAPCmd(tee string) *cobra.Command {
	var (
		reportData   string
		measurement  string
		quoteVersion int
		debug        bool
		out          string
	)
	name := strings.ToUpper(tee)
	measurementName, measurementSize, versions := "MRENCLAVE", 32, "3, 4 or 5"
	if tee == "tdx" {
		measurementName, measurementSize, versions = "MRTD", 48, "4 or 5 (TDX 1.5 body)"
	}
	cmd := &cobra.Command{
		Use:   tee + " --report-data HEX --out DIR",
		Short: "Write a DCAP quote from an emulated " + name + " TEE, with its development collateral",
		Long: fmt.Sprintf(`Generate a development root, PCK CA, PCK certificate, TCB signing certificate
and attestation key, and write a signed %s DCAP quote binding --report-data:

  DIR/quote.bin              the quote (version 4 unless --quote-version)
  DIR/collateral/            TCB Info, QE Identity, CRLs and issuer certificates, for --collateral
  DIR/dev-root/root.pem      the development root, for --trust-anchor
  DIR/emulator/              the keys (mode 0600) and certificates, to keep or delete

The collateral is valid for 30 days. The quote proves the format and the
report data, never %s hardware.`, name, name),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("--out is required: the directory to write the quote and collateral to")
			}
			opts := dcap.EmulatorOptions{TEE: tee, Debug: debug, QuoteVersion: quoteVersion}
			rd, err := attest.ParseHex(reportData)
			if err != nil {
				return usageError("--report-data: %v", err)
			}
			if measurement != "" {
				if opts.Measurement, err = attest.ParseHex(measurement); err != nil {
					return usageError("--measurement: %v", err)
				}
			}
			paths, err := dcap.EmulateToDir(cmd.Context(), opts, rd, out)
			if err != nil {
				return usageError("%v", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "EMULATED %s quote written to %s (signed by a development root, proves no hardware)\n", name, paths.Quote)
			fmt.Fprintf(w, "verify it with:\n  cloister verify --collateral %s --trust-anchor %s --allow-emulated %s\n",
				paths.Collateral, paths.Root, paths.Quote)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&reportData, "report-data", "", "report data to bind (hex, up to 64 bytes, zero-padded)")
	fl.StringVar(&measurement, "measurement", "", fmt.Sprintf("%s (hex, %d bytes; default: a fixed development value)", measurementName, measurementSize))
	fl.IntVar(&quoteVersion, "quote-version", 4, "quote format version: "+versions)
	fl.BoolVar(&debug, "debug", false, "set the DEBUG attribute (the default appraisal rejects the quote)")
	fl.StringVar(&out, "out", "", "directory to write the quote, collateral and development root to")
	_ = cmd.MarkFlagRequired("report-data")
	return cmd
}
