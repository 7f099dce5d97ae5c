package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/ratls"
	"github.com/cloister-dev/cloister/tee/dcap"
)

func init() { register(newVerifyCmd) }

// maxEvidenceSize bounds an evidence file read from disk or standard input.
const maxEvidenceSize = 64 << 20

// verifyFlags are the inputs shared by commands that verify evidence.
type verifyFlags struct {
	// prefix starts the names of the flags, such as "client-" for the
	// agent's flags of client evidence, so that messages name them.
	prefix          string
	collateralPaths []string
	trustAnchors    []string
	at              string
	format          string
	nonce           string
	audience        string
	output          string
	online          onlineFlags

	allowDebug           bool
	allowEmulated        bool
	allowUndeterminedTCB bool
	tcbStatuses          []string
	measurement          string
	reportData           string
	hostData             string
	chipID               string
	minTCB               string
	// minTCBEvaluationDataNumber is 0 for no minimum.
	minTCBEvaluationDataNumber uint32
	// maxVMPL is empty for any VMPL.
	maxVMPL string
}

func (f *verifyFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.collateralPaths, "collateral", nil, collateralFlagHelp)
	fl.StringArrayVar(&f.trustAnchors, "trust-anchor", nil, trustAnchorFlagHelp)
	fl.StringVar(&f.at, "at", "", "verification time, RFC 3339 (default: now)")
	fl.StringVar(&f.format, "format", "", formatFlagHelp)
	fl.StringVar(&f.nonce, "nonce", "", "expected nonce (hex): equal to the nonce field of TPM, Nitro, NVIDIA, PSA, CCA and token evidence, or the first bytes of SEV-SNP, TDX and SGX report data; use a fresh value of at least 16 bytes")
	fl.StringVar(&f.audience, "audience", "", "expected audience of a token (its aud claim)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	f.online.bind(cmd)

	fl.BoolVar(&f.allowDebug, "allow-debug", false, "accept a TEE in debug mode (its memory is readable by the host)")
	fl.BoolVar(&f.allowEmulated, "allow-emulated", false, "accept evidence from an emulated TEE (development only)")
	fl.BoolVar(&f.allowUndeterminedTCB, "allow-undetermined-tcb", false, "accept evidence whose TCB status cannot be determined for lack of collateral")
	fl.StringArrayVar(&f.tcbStatuses, "tcb-status", nil, "accepted TCB status (default: UpToDate and SWHardeningNeeded; NoMatchingTcbLevel is never accepted); repeatable")
	fl.StringVar(&f.measurement, "measurement", "", "expected launch measurement (hex): SEV-SNP MEASUREMENT, SGX MRENCLAVE, TDX MRTD")
	fl.StringVar(&f.reportData, "report-data", "", "expected report data (hex); a shorter value is zero-padded")
	fl.StringVar(&f.hostData, "host-data", "", "expected host data (hex): SEV-SNP HOST_DATA or TDX MRCONFIGID; a shorter value is zero-padded")
	fl.StringVar(&f.chipID, "chip-id", "", "expected chip ID (hex)")
	fl.StringVar(&f.minTCB, "min-tcb", "", "minimum TCB components, such as bootloader=4,tee=0,snp=22,microcode=213")
	fl.Uint32Var(&f.minTCBEvaluationDataNumber, "min-tcb-evaluation-data-number", 0, minTCBEvaluationDataNumberHelp)
	fl.StringVar(&f.maxVMPL, "max-vmpl", "", maxVMPLHelp)
}

// snpVMPLHelp is the help text of --snp-vmpl.
const snpVMPLHelp = "VMPL, 0 to 3, at which the SEV-SNP hardware attester requests reports, such as the VMPL of a guest that runs above VMPL 0 under an SVSM; rejected with another TEE or the emulated TEE (default: VMPL 0 through /dev/sev-guest, the kernel's default privlevel through configfs-tsm)"

// maxVMPLHelp is the help text of --max-vmpl.
const maxVMPLHelp = "highest accepted VMPL of an SEV-SNP report (also in composite evidence and MAA tokens), 0 to 3, such as 0 for a guest without a paravisor; software at a VMPL can request reports for that and every less privileged VMPL (default: any VMPL)"

// parseVMPL parses the value of a VMPL flag, such as --max-vmpl or
// --snp-vmpl, returning nil for an empty value.
func parseVMPL(flag, s string) (*uint32, error) {
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v > 3 {
		return nil, usageError("invalid %s %q: use 0, 1, 2 or 3, the VMPLs of SEV-SNP", flag, s)
	}
	vmpl := uint32(v)
	return &vmpl, nil
}

// minTCBEvaluationDataNumberHelp is the help text of
// --min-tcb-evaluation-data-number.
const minTCBEvaluationDataNumberHelp = "minimum Intel TCB evaluation data number of the TCB Info and QE Identity for SGX and TDX evidence (also in composite evidence and tokens), which Intel raises with each TCB recovery event and lists at /sgx/certification/v4/tcbevaluationdatanumbers of its PCS; SGX and TDX evidence without a verified TCB Info or QE Identity, and Intel Trust Authority and MAA tokens, which state no number, are then rejected (default: 0, no minimum)"

// flag returns the command-line spelling of the flag name.
func (f *verifyFlags) flag(name string) string { return "--" + f.prefix + name }

// options turns the flags into verification and appraisal options.
func (f *verifyFlags) options() (attest.Options, appraise.Options, error) {
	var vo attest.Options
	var ao appraise.Options
	if f.output != "text" && f.output != "json" {
		return vo, ao, usageError("invalid --output %q: use text or json", f.output)
	}
	if f.at != "" {
		at, err := time.Parse(time.RFC3339Nano, f.at)
		if err != nil {
			return vo, ao, usageError("invalid --at %q: use RFC 3339, such as 2025-06-01T00:00:00Z", f.at)
		}
		vo.At = at
	}
	set, err := loadCollateral(f.flag("collateral"), f.collateralPaths, true)
	if err != nil {
		return vo, ao, err
	}
	vo.Collateral = set
	if f.online.enabled {
		vo.Collateral = collateral.Sources{set, f.online.source()}
	}
	anchors, err := loadCollateral(f.flag("trust-anchor"), f.trustAnchors, false)
	if err != nil {
		return vo, ao, err
	}
	vo.TrustAnchors = anchors
	vo.Audience = f.audience

	hexFlags := []struct {
		name string
		in   string
		out  *attest.Hex
	}{
		{f.flag("nonce"), f.nonce, (*attest.Hex)(&vo.Nonce)},
		{f.flag("measurement"), f.measurement, &ao.Measurement},
		{f.flag("report-data"), f.reportData, &ao.ReportData},
		{f.flag("host-data"), f.hostData, &ao.HostData},
		{f.flag("chip-id"), f.chipID, &ao.ChipID},
	}
	for _, h := range hexFlags {
		if h.in == "" {
			continue
		}
		v, err := attest.ParseHex(h.in)
		if err != nil {
			return vo, ao, usageError("%s: %v", h.name, err)
		}
		*h.out = v
	}
	minTCB, err := appraise.ParseMinTCB(f.minTCB)
	if err != nil {
		return vo, ao, usageError("%s: %v", f.flag("min-tcb"), err)
	}
	ao.MinTCB = minTCB
	ao.AllowDebug = f.allowDebug
	ao.AllowEmulated = f.allowEmulated
	ao.AllowUndeterminedTCB = f.allowUndeterminedTCB
	if err := appraise.ValidateTCBStatuses(f.tcbStatuses); err != nil {
		return vo, ao, usageError("invalid %s: %v (correct or remove that %s)", f.flag("tcb-status"), err, f.flag("tcb-status"))
	}
	ao.TCBStatuses = f.tcbStatuses
	ao.MinTCBEvaluationDataNumber = f.minTCBEvaluationDataNumber
	if ao.MaxVMPL, err = parseVMPL(f.flag("max-vmpl"), f.maxVMPL); err != nil {
		return vo, ao, err
	}
	return vo, ao, nil
}

// minFreshNonce is the nonce length in bytes (64 bits) below which verify
// warns: a shorter nonce, or a short prefix of the report data, repeats too
// often to prove that the evidence is fresh. It is a warning, not an error,
// because real evidence exists with shorter nonces.
const minFreshNonce = 8

func newVerifyCmd() *cobra.Command {
	var f verifyFlags
	var eventLogPath string
	var maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "verify [flags] FILE",
		Short: "Verify attestation evidence and appraise it",
		Long: `Verify attestation evidence (a file, or - for standard input) against vendor
roots and the collateral given with --collateral, then appraise the claims.

The format is detected from the content. Verification works offline: pass the
certificates, CRLs and vendor documents it needs with --collateral.

An RA-TLS certificate is rejected after its notAfter, and also when its
evidence is older than --max-age, as a peer connecting to it would do.

Exit status: 0 when accepted, 1 when rejected (the reason is printed), 2 on a
usage or I/O error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vo, ao, err := f.options()
			if err != nil {
				return err
			}
			if maxAge <= 0 {
				return usageError("--max-age %s is not positive: use a duration such as 1h5m", maxAge)
			}
			vo.MaxAge = maxAge
			if n := len(vo.Nonce); n > 0 && n < minFreshNonce {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: --nonce has %d bytes; a nonce shorter than %d bytes proves little freshness, so request evidence with a longer one\n", n, minFreshNonce)
			}
			data, err := readEvidence(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			ev := attest.Evidence{Format: f.format, Data: data}
			if eventLogPath != "" {
				if ev.Aux, err = readEventLog(eventLogPath, f.format, data); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			res := appraise.Evaluate(ctx, ev, vo, ao)
			if err := printResult(cmd.OutOrStdout(), f.output, res); err != nil {
				return usageError("writing output: %v", err)
			}
			if res.Verdict != appraise.Accept {
				return &exitError{code: exitRejected}
			}
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().DurationVar(&maxAge, "max-age", ratls.DefaultMaxAge, "oldest accepted evidence in an RA-TLS certificate, from its attested issuance time to --at or now; certificates of other software carry no issuance time and are not limited")
	cmd.Flags().StringVar(&eventLogPath, "event-log", "", "TDX CC event log to replay against the quote's RTMRs: the guest's /sys/firmware/acpi/tables/data/CCEL, raw bytes")
	return cmd
}

// readEventLog reads the CC event log at path for the evidence data. The
// log travels as Evidence.Aux, which other verifiers read as something
// else (the SEV-SNP certificate table), so it is accepted for DCAP quotes
// only.
func readEventLog(path, format string, data []byte) ([]byte, error) {
	v, ok := attest.Lookup(format)
	if format == "" {
		detected, err := attest.Detect(data)
		if err != nil {
			return nil, usageError("--event-log: %v", err)
		}
		v, ok = detected, true
	}
	if !ok {
		return nil, usageError("--event-log: unknown --format %q; TDX quotes have the format dcap", format)
	}
	if v.Name() != "dcap" {
		return nil, usageError("--event-log applies to TDX quotes only, but the evidence is in the %s format; verify it without --event-log", v.Name())
	}

	file, err := os.Open(path)
	if err != nil {
		return nil, usageError("reading --event-log: %v", err)
	}
	defer file.Close()
	log, err := io.ReadAll(io.LimitReader(file, dcap.MaxEventLogSize+1))
	if err != nil {
		return nil, usageError("reading --event-log %s: %v", path, err)
	}
	if len(log) > dcap.MaxEventLogSize {
		return nil, usageError("--event-log %s is larger than %d bytes (4 MiB), the largest CC event log Cloister replays", path, dcap.MaxEventLogSize)
	}
	if len(log) == 0 {
		// An empty log would read as no log, and the replay would not run.
		return nil, usageError("--event-log %s is empty; pass the guest's /sys/firmware/acpi/tables/data/CCEL, or verify without --event-log", path)
	}
	return log, nil
}

// readEvidence reads a file, or standard input for "-", up to
// maxEvidenceSize bytes.
func readEvidence(stdin io.Reader, path string) ([]byte, error) {
	var r io.Reader = stdin
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return nil, usageError("reading evidence: %v", err)
		}
		defer file.Close()
		r = file
	}
	data, err := io.ReadAll(io.LimitReader(r, maxEvidenceSize+1))
	if err != nil {
		return nil, usageError("reading evidence %s: %v", path, err)
	}
	if len(data) > maxEvidenceSize {
		return nil, usageError("evidence %s is larger than %d bytes", path, maxEvidenceSize)
	}
	return data, nil
}

// errorText returns err's message, or "" for nil.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}
