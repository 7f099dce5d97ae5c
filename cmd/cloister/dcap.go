package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

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
		flags         emulateFlags
		quoteVersion  int
		moduleUpdated bool
	)
	name := strings.ToUpper(tee)
	measurementName, measurementSize, versions := "MRENCLAVE", 32, "3, 4 or 5"
	eventLogLine := ""
	if tee == "tdx" {
		measurementName, measurementSize, versions = "MRTD", 48, "4 or 5 (TDX 1.5 body)"
		eventLogLine = "\n  DIR/" + dcap.EventLogFile + "               the CC event log, whose replay gives the RTMRs, for --event-log"
	}
	cmd := &cobra.Command{
		Use:   tee + " --report-data HEX --out DIR",
		Short: "Write a DCAP quote from an emulated " + name + " TEE, with its development collateral",
		Long: fmt.Sprintf(`Generate a development root, PCK CA, PCK certificate, TCB signing certificate
and attestation key, and write a signed %s DCAP quote binding --report-data:

  DIR/quote.bin              the quote (version 4 unless --quote-version)%s
  DIR/collateral/            TCB Info, QE Identity, CRLs and issuer certificates, for --collateral
  DIR/dev-root/root.pem      the development root, for --trust-anchor
  DIR/emulator/              the keys (mode 0600) and certificates, to keep or delete

The collateral is valid for 30 days. The quote proves the format and the
report data, never %s hardware.`, name, eventLogLine, name),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rd, measurement, err := flags.parse("quote")
			if err != nil {
				return err
			}
			if moduleUpdated && quoteVersion != 5 {
				return usageError("--module-updated needs --quote-version 5, because only TDX quotes of version 5 carry TEE_TCB_SVN2")
			}
			opts := dcap.EmulatorOptions{TEE: tee, Debug: flags.debug, QuoteVersion: quoteVersion, Measurement: measurement,
				ModuleUpdated: moduleUpdated}
			paths, err := dcap.EmulateToDir(cmd.Context(), opts, rd, flags.out)
			if err != nil {
				return usageError("%v", err)
			}
			if tee != "tdx" {
				printEmulated(cmd.OutOrStdout(), name+" quote", tee, paths, rd)
				return nil
			}
			eventLog := filepath.Join(flags.out, dcap.EventLogFile)
			printEmulatedWith(cmd.OutOrStdout(), name+" quote", tee, paths, rd, "--event-log "+eventLog)
			return nil
		},
	}
	flags.add(cmd, "quote",
		fmt.Sprintf("%s (hex, %d bytes; default: a fixed development value)", measurementName, measurementSize),
		"set the DEBUG attribute (the default appraisal rejects the quote)")
	cmd.Flags().IntVar(&quoteVersion, "quote-version", 4, "quote format version: "+versions)
	if tee == "tdx" {
		cmd.Flags().BoolVar(&moduleUpdated, "module-updated", false,
			"emulate a TD launched before a TD-preserving update of its TDX module (needs --quote-version 5): "+
				"the TCB status is OutOfDate, and verification advises a relaunch")
	}
	return cmd
}
