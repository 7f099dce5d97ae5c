package main

import (
	"encoding/hex"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/emudir"
)

func init() { register(newEmulateCmd) }

// emulateCommands holds the constructors of the `emulate` subcommands, one
// per emulated TEE. Each TEE's command file adds its own from init with
// registerEmulate, so that a TEE can be added without editing this file.
var emulateCommands []func() *cobra.Command

// registerEmulate adds the constructor of an `emulate <tee>` subcommand.
func registerEmulate(newCmd func() *cobra.Command) {
	emulateCommands = append(emulateCommands, newCmd)
}

func newEmulateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emulate",
		Short: "Produce evidence from an emulated TEE, signed by a development root",
		Long: fmt.Sprintf(`Produce attestation evidence in a real TEE format on a machine without that
TEE. The evidence is signed by a development root generated on this machine,
whose certificates carry the organization
%q.
It proves the format and the binding of the report data, never hardware.

cloister verify accepts such evidence only when the development root is
passed with --trust-anchor, and the default appraisal rejects it unless
--allow-emulated is given.`, attest.EmulatedOrganization),
		Args: cobra.NoArgs,
	}
	for _, newSub := range emulateCommands {
		cmd.AddCommand(newSub())
	}
	return cmd
}

// emulateFlags are the flags that every `emulate <tee>` command has.
type emulateFlags struct {
	reportData  string
	measurement string
	debug       bool
	out         string
}

// add registers the flags on cmd. evidence names what the command writes
// ("report", "quote"), measurementHelp and debugHelp describe
// --measurement and --debug.
func (f *emulateFlags) add(cmd *cobra.Command, evidence, measurementHelp, debugHelp string) {
	fl := cmd.Flags()
	fl.StringVar(&f.reportData, "report-data", "", "report data to bind (hex, up to 64 bytes, zero-padded)")
	fl.StringVar(&f.measurement, "measurement", "", measurementHelp)
	fl.BoolVar(&f.debug, "debug", false, debugHelp)
	fl.StringVar(&f.out, "out", "", "directory to write the "+evidence+", collateral and development root to")
}

// parse checks that --out is set and decodes --report-data and, when set,
// --measurement. An unset --measurement yields nil, which selects the
// emulator's fixed development value.
func (f *emulateFlags) parse(evidence string) (reportData, measurement []byte, err error) {
	if f.out == "" {
		return nil, nil, usageError("--out is required: the directory to write the %s, collateral and development root to", evidence)
	}
	if f.reportData == "" {
		return nil, nil, usageError("--report-data is required: the hex bytes the %s binds, such as a nonce or a key hash (--report-data 00112233)", evidence)
	}
	if reportData, err = attest.ParseHex(f.reportData); err != nil {
		return nil, nil, usageError("--report-data: %v", err)
	}
	if f.measurement != "" {
		if measurement, err = attest.ParseHex(f.measurement); err != nil {
			return nil, nil, usageError("--measurement: %v", err)
		}
	}
	return reportData, measurement, nil
}

// printEmulated writes that the evidence is emulated and the `cloister
// verify` command line that accepts it and checks that it binds
// reportData. evidence names the kind of evidence, such as "SEV-SNP
// report", and tee the TEE to which the command line scopes the
// development root, such as "snp".
func printEmulated(w io.Writer, evidence, tee string, p *emudir.Paths, reportData []byte) {
	printEmulatedWith(w, evidence, tee, p, reportData, "")
}

// printEmulatedWith is printEmulated with further `cloister verify` flags,
// such as --event-log FILE, before the evidence file.
func printEmulatedWith(w io.Writer, evidence, tee string, p *emudir.Paths, reportData []byte, flags string) {
	if flags != "" {
		flags += " "
	}
	printEmulatedHeader(w, evidence, p)
	fmt.Fprintf(w, "verify it with:\n  cloister verify --collateral %s --trust-anchor %s=%s --allow-emulated --report-data %s %s%s\n",
		p.Collateral, tee, p.Root, hex.EncodeToString(reportData), flags, p.Evidence)
}

// printEmulatedHeader writes that the evidence in p.Evidence is emulated.
func printEmulatedHeader(w io.Writer, evidence string, p *emudir.Paths) {
	fmt.Fprintf(w, "EMULATED %s written to %s (signed by a development root, proves no hardware)\n", evidence, p.Evidence)
}
