package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/agent"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/dcap"
	"github.com/cloister-dev/cloister/tee/snp"
)

func init() { register(newEvidenceCmd) }

// evidenceOutput is the printed form of `cloister evidence`.
type evidenceOutput struct {
	Attester   string     `json:"attester"`
	Emulated   bool       `json:"emulated"`
	Format     string     `json:"format"`
	ReportData attest.Hex `json:"report_data"`
	Evidence   string     `json:"evidence_base64"`
	Aux        string     `json:"aux_base64,omitempty"`
	// EventLog is the attester's event log, such as a TDX guest's CC
	// event log, which travels beside the evidence rather than in it.
	EventLog string   `json:"event_log_base64,omitempty"`
	Files    []string `json:"files,omitempty"`
	Verify   string   `json:"verify_command,omitempty"`
}

func newEvidenceCmd() *cobra.Command {
	var (
		reportData  string
		out         string
		output      string
		emulated    bool
		emulatorDir string
		snpVMPL     string
	)
	cmd := &cobra.Command{
		Use:   "evidence [--report-data HEX] [--out FILE] [--emulated]",
		Short: "Collect attestation evidence from this machine's TEE",
		Long: `Collect attestation evidence with the given report data from the TEE this
machine has: configfs-tsm or /dev/sev-guest (SEV-SNP), /dev/tdx_guest (TDX),
/dev/nsm (AWS Nitro Enclaves) or /dev/tpmrm0 (TPM), whichever the TEE packages
find first. With --emulated, the emulated SEV-SNP TEE produces the evidence;
it is labelled "emulated" everywhere and proves no hardware. Without a TEE
and without --emulated, the command fails, so that a script on a machine
whose TEE device is missing does not get emulated evidence.

A TDX guest's CC event log, whose replay gives the RTMRs, comes with the
evidence. When it cannot be read, the command warns and goes on without it,
and the event-log check of the evidence is then not-checked.

With --out FILE the raw evidence is written to FILE, its auxiliary data (such
as the SEV-SNP certificate table) to FILE.aux, the CC event log to
FILE.ccel.bin, and for the emulated TEE the endorsement certificates to
FILE.collateral.pem and the development root to FILE.root.pem; the output
names the command that verifies them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError("invalid --output %q: use text or json", output)
			}
			rd, err := attest.ParseHex(reportData)
			if err != nil {
				return usageError("--report-data: %v", err)
			}
			if len(rd) > 64 {
				return usageError("--report-data is %d bytes; TEEs take at most 64", len(rd))
			}
			if emulatorDir != "" && !emulated {
				return usageError("--emulator-dir needs --emulated")
			}
			vmpl, err := parseVMPL("--snp-vmpl", snpVMPL)
			if err != nil {
				return err
			}
			sel, err := agent.OpenAttester(agent.AttesterOptions{Emulated: emulated, EmulatorDir: emulatorDir, SNPVMPL: vmpl})
			if errors.Is(err, agent.ErrNoTEE) {
				return &exitError{code: exitRejected, err: fmt.Errorf("%w; pass --emulated to use the emulated SEV-SNP TEE for development", err)}
			}
			if err != nil {
				return &exitError{code: exitRejected, err: err}
			}
			return collectEvidence(cmd, sel, rd, out, output)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&reportData, "report-data", "", "report data to bind (hex, up to 64 bytes, zero-padded by the TEE)")
	fl.StringVar(&out, "out", "", "file to write the raw evidence to (with .aux, .ccel.bin, .collateral.pem and .root.pem beside it)")
	fl.StringVarP(&output, "output", "o", "text", "output format: text or json")
	fl.BoolVar(&emulated, "emulated", false, "use the emulated SEV-SNP TEE (development only), also when hardware is present")
	fl.StringVar(&emulatorDir, "emulator-dir", "", "directory keeping the emulated TEE's development keys across runs (default: new keys in memory)")
	fl.StringVar(&snpVMPL, "snp-vmpl", "", snpVMPLHelp)
	return cmd
}

// collectEvidence collects evidence binding rd from sel's attester, with
// the attester's event log when it is an attest.EventLogger, writes the
// files of --out when out is not empty, and prints the result in the
// output format.
func collectEvidence(cmd *cobra.Command, sel *agent.Selection, rd []byte, out, output string) error {
	ev, err := sel.Attester.Attest(cmd.Context(), rd)
	if err != nil {
		return &exitError{code: exitRejected, err: fmt.Errorf("collecting evidence from %s: %w", sel.Attester.Name(), err)}
	}
	eventLog, err := attesterEventLog(cmd.Context(), sel.Attester, cmd.ErrOrStderr())
	if err != nil {
		return &exitError{code: exitRejected, err: fmt.Errorf("reading the event log from %s: %w", sel.Attester.Name(), err)}
	}

	res := evidenceOutput{Attester: sel.Attester.Name(), Emulated: sel.Emulated, Format: ev.Format,
		ReportData: rd, Evidence: base64.StdEncoding.EncodeToString(ev.Data)}
	if len(ev.Aux) > 0 {
		res.Aux = base64.StdEncoding.EncodeToString(ev.Aux)
	}
	if len(eventLog) > 0 {
		res.EventLog = base64.StdEncoding.EncodeToString(eventLog)
	}
	if out != "" {
		if err := writeEvidenceFiles(out, ev, eventLog, sel, &res); err != nil {
			return usageError("%v", err)
		}
	}
	for _, e := range sel.Skipped {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", e)
	}
	return printEvidence(cmd.OutOrStdout(), output, res, out != "")
}

// attesterEventLog returns the event log of an attest.EventLogger, and nil
// for other attesters. A log that cannot be read is left out with a
// warning on stderr, as the KBS client leaves it out, because the
// evidence verifies without it. Only the cancellation of ctx is returned.
func attesterEventLog(ctx context.Context, a attest.Attester, stderr io.Writer) ([]byte, error) {
	logger, ok := a.(attest.EventLogger)
	if !ok {
		return nil, nil
	}
	eventLog, err := logger.EventLog(ctx)
	if err == nil {
		return eventLog, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, ctxErr
	}
	fmt.Fprintf(stderr, "warning: reading the event log failed, so the evidence comes without it and its event-log check will be not-checked: %v\n", err)
	return nil, nil
}

// writeEvidenceFiles writes the evidence to out and its aux, event log and
// emulator files beside it, adds their paths to res.Files and sets
// res.Verify to the command that verifies them. The event log goes to
// out.ccel.bin, because ccel.bin (dcap.EventLogFile) is the log file that
// `cloister emulate tdx` writes.
func writeEvidenceFiles(out string, ev *attest.Evidence, eventLog []byte, sel *agent.Selection, res *evidenceOutput) error {
	write := func(path string, data []byte) error {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		res.Files = append(res.Files, path)
		return nil
	}
	if err := write(out, ev.Data); err != nil {
		return err
	}
	if len(ev.Aux) > 0 {
		if err := write(out+".aux", ev.Aux); err != nil {
			return err
		}
	}
	eventLogFlag := ""
	if len(eventLog) > 0 {
		path := out + "." + dcap.EventLogFile
		if err := write(path, eventLog); err != nil {
			return err
		}
		eventLogFlag = "--event-log " + path + " "
	}
	if sel.Emulator == nil {
		res.Verify = "cloister verify " + eventLogFlag + out
		return nil
	}
	if err := write(out+".collateral.pem", emulatorCollateralPEM(sel.Emulator)); err != nil {
		return err
	}
	root := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sel.Emulator.Root().Raw})
	if err := write(out+".root.pem", root); err != nil {
		return err
	}
	res.Verify = fmt.Sprintf("cloister verify --collateral %s.collateral.pem --trust-anchor %s=%s.root.pem --allow-emulated %s%s", out, attest.TEESNP, out, eventLogFlag, out)
	return nil
}

func emulatorCollateralPEM(e *snp.Emulator) []byte {
	var b bytes.Buffer
	for _, item := range e.Collateral().Items {
		if item.Certificate != nil {
			pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: item.Raw})
		}
	}
	return b.Bytes()
}

func printEvidence(w io.Writer, output string, res evidenceOutput, saved bool) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	var b strings.Builder
	label := res.Attester
	if res.Emulated {
		label += " (" + attest.EmulatedLabel + ")"
	}
	fmt.Fprintf(&b, "attester:    %s\n", label)
	fmt.Fprintf(&b, "format:      %s\n", res.Format)
	reportData := res.ReportData.String()
	if reportData == "" {
		reportData = "all zero (no --report-data)"
	}
	fmt.Fprintf(&b, "report data: %s\n", reportData)
	if saved {
		fmt.Fprintf(&b, "written:     %s\n", strings.Join(res.Files, ", "))
		fmt.Fprintf(&b, "verify with: %s\n", res.Verify)
	} else {
		fmt.Fprintf(&b, "evidence (base64):\n%s\n", res.Evidence)
		if res.Aux != "" {
			fmt.Fprintf(&b, "aux (base64):\n%s\n", res.Aux)
		}
		if res.EventLog != "" {
			fmt.Fprintf(&b, "event log (base64):\n%s\n", res.EventLog)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
