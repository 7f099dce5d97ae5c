package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/snp"
)

func init() { registerEmulate(newEmulateSNPCmd) }

func newEmulateSNPCmd() *cobra.Command {
	var (
		reportData  string
		measurement string
		hostData    string
		product     string
		signingKey  string
		debug       bool
		out         string
	)
	cmd := &cobra.Command{
		Use:   "snp --report-data HEX --out DIR",
		Short: "Write an SEV-SNP report from an emulated guest, with its development chain",
		Long: `Generate a development ARK, ASK and VCEK (or ASVK and VLEK) and write a signed
SEV-SNP attestation report (version 3) binding --report-data:

  DIR/report.bin          the report
  DIR/collateral/         the VCEK (or VLEK) and ASK (or ASVK), for --collateral
  DIR/dev-root/ark.pem    the development ARK, for --trust-anchor
  DIR/emulator/           the keys (mode 0600) and certificates, to keep or delete

The report proves the format and the report data, never SEV-SNP hardware.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("--out is required: the directory to write the report and chain to")
			}
			opts := snp.EmulatorOptions{Product: product, Debug: debug, SigningKey: signingKey}
			rd, err := attest.ParseHex(reportData)
			if err != nil {
				return usageError("--report-data: %v", err)
			}
			if measurement != "" {
				if opts.Measurement, err = attest.ParseHex(measurement); err != nil {
					return usageError("--measurement: %v", err)
				}
			}
			if hostData != "" {
				if opts.HostData, err = attest.ParseHex(hostData); err != nil {
					return usageError("--host-data: %v", err)
				}
			}
			paths, err := snp.EmulateToDir(cmd.Context(), opts, rd, out)
			if err != nil {
				return usageError("%v", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "EMULATED SEV-SNP report written to %s (signed by a development root, proves no hardware)\n", paths.Report)
			fmt.Fprintf(w, "verify it with:\n  cloister verify --collateral %s --trust-anchor %s --allow-emulated %s\n",
				paths.Collateral, paths.Root, paths.Report)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&reportData, "report-data", "", "report data to bind (hex, up to 64 bytes, zero-padded)")
	fl.StringVar(&measurement, "measurement", "", "launch MEASUREMENT (hex, 48 bytes; default: a fixed development value)")
	fl.StringVar(&hostData, "host-data", "", "HOST_DATA (hex, up to 32 bytes)")
	fl.StringVar(&product, "product", "Milan", "processor generation: Milan, Genoa or Turin")
	fl.StringVar(&signingKey, "signing-key", "VCEK", "endorsement key: VCEK or VLEK")
	fl.BoolVar(&debug, "debug", false, "set the guest policy's DEBUG bit (the default appraisal rejects the report)")
	fl.StringVar(&out, "out", "", "directory to write the report, collateral and development root to")
	_ = cmd.MarkFlagRequired("report-data")
	return cmd
}
