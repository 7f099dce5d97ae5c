package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// jsonResult is the --output json form of a verification result.
type jsonResult struct {
	Verdict   appraise.Verdict  `json:"verdict"`
	Format    string            `json:"format,omitempty"`
	Emulated  *bool             `json:"emulated"` // null until a trust anchor verified the evidence
	ErrorKind string            `json:"error_kind,omitempty"`
	Error     string            `json:"error,omitempty"`
	Reasons   []appraise.Reason `json:"reasons,omitempty"`
	Claims    *attest.Claims    `json:"claims,omitempty"`
}

func printResult(w io.Writer, format string, res *appraise.Result) error {
	if format == "json" {
		out := jsonResult{Verdict: res.Verdict, Format: res.Format, Reasons: res.Reasons, Claims: res.Claims,
			ErrorKind: res.ErrorKind(), Error: errorText(res.Error)}
		if c := res.Claims; c != nil && (c.Emulated || c.TrustAnchor.Kind != "") {
			emulated := c.Emulated
			out.Emulated = &emulated
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return printText(w, res)
}

func printText(w io.Writer, res *appraise.Result) error {
	var b strings.Builder
	verdict := strings.ToUpper(string(res.Verdict))
	if res.Claims != nil && res.Claims.Emulated {
		verdict += " (" + attest.EmulatedLabel + ")"
	}
	fmt.Fprintf(&b, "verdict: %s\n", verdict)
	if res.Error != nil {
		fmt.Fprintf(&b, "reason:  %v\n", res.Error)
	}
	if c := res.Claims; c != nil {
		writeClaims(&b, c)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeClaims(b *strings.Builder, c *attest.Claims) {
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(b, "  %-16s %s\n", k+":", v)
		}
	}
	b.WriteString("claims (verified):\n")
	line("tee", string(c.TEE))
	line("product", c.Product)
	line("emulated", fmt.Sprint(c.Emulated))
	line("trust anchor", fmt.Sprintf("%s %s", c.TrustAnchor.Kind, c.TrustAnchor.Name))
	line("signing key", c.SigningKey)
	line("debug", fmt.Sprint(c.Debug))
	line("measurement", c.Measurement.String())
	for _, k := range sortedKeys(c.Measurements) {
		line(k, c.Measurements[k].String())
	}
	line("report data", c.ReportData.String())
	line("nonce", c.Nonce.String())
	line("host data", c.HostData.String())
	line("chip id", c.ChipID.String())
	line("tcb status", c.TCB.Status)
	if c.TCB.RelaunchAdvised {
		line("relaunch", "advised: the TD runs on an updated TDX module that is up to date")
	}
	line("advisories", strings.Join(c.TCB.AdvisoryIDs, ", "))
	for _, k := range sortedKeys(c.TCB.Values) {
		line(k, c.TCB.Values[k])
	}
	line("verified at", c.VerifiedAt.UTC().Format("2006-01-02T15:04:05Z07:00"))
	b.WriteString("checks:\n")
	for _, ch := range c.Checks {
		detail := ""
		if ch.Detail != "" {
			detail = " (" + ch.Detail + ")"
		}
		req := ""
		if ch.Required && ch.Result == attest.CheckNotChecked {
			req = " [required]"
		}
		fmt.Fprintf(b, "  %-12s %s%s%s\n", ch.Result, ch.Name, req, detail)
	}
	for _, wmsg := range c.Warnings {
		fmt.Fprintf(b, "warning: %s\n", wmsg)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
