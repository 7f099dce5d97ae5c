package main

import (
	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/snp"
)

func init() { registerEmulate(newEmulateSNPCmd) }

func newEmulateSNPCmd() *cobra.Command {
	var (
		flags      emulateFlags
		hostData   string
		product    string
		signingKey string
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
			rd, measurement, err := flags.parse("report")
			if err != nil {
				return err
			}
			opts := snp.EmulatorOptions{Product: product, Debug: flags.debug, SigningKey: signingKey, Measurement: measurement}
			if hostData != "" {
				if opts.HostData, err = attest.ParseHex(hostData); err != nil {
					return usageError("--host-data: %v", err)
				}
			}
			paths, err := snp.EmulateToDir(cmd.Context(), opts, rd, flags.out)
			if err != nil {
				return usageError("%v", err)
			}
			printEmulated(cmd.OutOrStdout(), "SEV-SNP report", "snp", paths, rd)
			return nil
		},
	}
	flags.add(cmd, "report",
		"launch MEASUREMENT (hex, 48 bytes; default: a fixed development value)",
		"set the guest policy's DEBUG bit (the default appraisal rejects the report)")
	fl := cmd.Flags()
	fl.StringVar(&hostData, "host-data", "", "HOST_DATA (hex, up to 32 bytes)")
	fl.StringVar(&product, "product", "Milan", "processor generation: Milan, Genoa or Turin")
	fl.StringVar(&signingKey, "signing-key", "VCEK", "endorsement key: VCEK or VLEK")
	return cmd
}
