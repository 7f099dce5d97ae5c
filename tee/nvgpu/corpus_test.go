package nvgpu

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

func corpusOptions(t *testing.T, c corpus.Case) attest.Options {
	t.Helper()
	return attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
}

func evaluate(t *testing.T, data []byte, vo attest.Options, ao appraise.Options) *appraise.Result {
	t.Helper()
	return appraise.Evaluate(context.Background(), attest.Evidence{Format: "nvidia-gpu", Data: data}, vo, ao)
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCorpusVerdicts(t *testing.T) {
	for _, c := range corpus.Cases(t, "nvidia-gpu") {
		t.Run(c.Name, func(t *testing.T) {
			exp := c.Expect
			res := evaluate(t, c.EvidenceBytes(t), corpusOptions(t, c), appraise.Options{})
			if string(res.Verdict) != exp.DefaultVerdict {
				t.Fatalf("verdict %s, expected %s (error: %v)", res.Verdict, exp.DefaultVerdict, res.Error)
			}
			if exp.DefaultVerdict == "reject" && !corpus.MatchesReason(errorText(res.Error), exp.RejectReason) {
				t.Errorf("error %q does not state the reason %q", res.Error, exp.RejectReason)
			}
			if exp.VerdictIfDebugAllowed != "" {
				res := evaluate(t, c.EvidenceBytes(t), corpusOptions(t, c), appraise.Options{AllowDebug: true})
				if string(res.Verdict) != exp.VerdictIfDebugAllowed {
					t.Errorf("verdict with debug allowed %s, expected %s", res.Verdict, exp.VerdictIfDebugAllowed)
				}
			}
		})
	}
}

func TestCorpusClaims(t *testing.T) {
	for _, c := range corpus.Cases(t, "nvidia-gpu") {
		t.Run(c.Name, func(t *testing.T) {
			exp := c.Expect
			res := evaluate(t, c.EvidenceBytes(t), corpusOptions(t, c), appraise.Options{})
			if exp.SignatureValid != nil && !*exp.SignatureValid || exp.ChainValid != nil && !*exp.ChainValid {
				if res.Claims != nil {
					t.Fatalf("claims returned for evidence whose signature or chain is invalid: %+v", res.Claims)
				}
				return
			}
			if res.Claims == nil {
				t.Fatalf("no claims: %v", res.Error)
			}
			cl := res.Claims
			if exp.Nonce != nil && cl.Nonce.String() != *exp.Nonce {
				t.Errorf("nonce %s, expected %s", cl.Nonce, *exp.Nonce)
			}
			for name, want := range exp.Measurements {
				if got := cl.Measurements[name].String(); got != want {
					t.Errorf("measurement %s = %s, expected %s", name, got, want)
				}
			}
			if cl.Debug {
				t.Error("debug reported, but GPU reports have no debug indicator")
			}
			if cl.Product != "GH100" {
				t.Errorf("product %q, expected GH100", cl.Product)
			}
			if cl.TrustAnchor.Kind != attest.AnchorVendorRoot {
				t.Errorf("trust anchor kind %s, expected %s", cl.TrustAnchor.Kind, attest.AnchorVendorRoot)
			}
			if _, ok := cl.Attributes["driver_version"].(string); !ok {
				t.Errorf("driver_version attribute missing: %v", cl.Attributes)
			}
			if _, ok := cl.Attributes["vbios_version"].(string); !ok {
				t.Errorf("vbios_version attribute missing: %v", cl.Attributes)
			}
			for _, name := range []string{"ocsp", "rim"} {
				if !hasCheck(cl, name, attest.CheckNotChecked) {
					t.Errorf("check %s not recorded as not checked: %+v", name, cl.Checks)
				}
			}
		})
	}
}

func hasCheck(c *attest.Claims, name string, result attest.CheckResult) bool {
	for _, ch := range c.Checks {
		if ch.Name == name && ch.Result == result {
			return true
		}
	}
	return false
}

func TestCorpusExpectedNonce(t *testing.T) {
	for _, c := range corpus.Cases(t, "nvidia-gpu") {
		if c.Expect.DefaultVerdict != "accept" || c.Expect.Nonce == nil {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			nonce, err := hex.DecodeString(*c.Expect.Nonce)
			if err != nil {
				t.Fatal(err)
			}
			vo := corpusOptions(t, c)
			vo.Nonce = nonce
			if res := evaluate(t, c.EvidenceBytes(t), vo, appraise.Options{}); res.Verdict != appraise.Accept {
				t.Errorf("rejected with the report's own nonce: %v", res.Error)
			}

			vo.Nonce = append([]byte{}, nonce...)
			vo.Nonce[31] ^= 1
			res := evaluate(t, c.EvidenceBytes(t), vo, appraise.Options{})
			if res.Verdict != appraise.Reject {
				t.Fatal("accepted with a different expected nonce")
			}
			if !errors.Is(res.Error, attest.ErrBinding) {
				t.Errorf("error %v is not ErrBinding", res.Error)
			}
			if !corpus.MatchesReason(errorText(res.Error), "nonce") {
				t.Errorf("error %q does not name the nonce", res.Error)
			}
		})
	}
}

// positiveCases returns the accepted corpus cases with their certificate
// chain files.
func positiveCases(t *testing.T) []corpus.Case {
	var out []corpus.Case
	for _, c := range corpus.Cases(t, "nvidia-gpu") {
		if c.Expect.DefaultVerdict == "accept" && c.Expect.OtherInputs["cert_chain"] != "" {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Skip("no accepted case with a certificate chain")
	}
	return out
}

// multiGPU returns the evidence of the cases as one JSON array in the form
// of NVIDIA's attestation SDK.
func multiGPU(t *testing.T, cases ...corpus.Case) []byte {
	t.Helper()
	var entries []map[string]string
	for _, c := range cases {
		chain, err := os.ReadFile(filepath.Join(c.Dir, c.Expect.OtherInputs["cert_chain"]))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, map[string]string{
			"attestationReportHexStr": string(bytes.TrimSpace(c.EvidenceBytes(t))),
			"certChainBase64Encoded":  base64.StdEncoding.EncodeToString(chain),
		})
	}
	data, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestCorpusMultiGPU(t *testing.T) {
	c := positiveCases(t)[0]
	data := multiGPU(t, c, c)
	if !(&Verifier{}).Detect(data) {
		t.Fatal("multi-GPU array not detected")
	}
	// The chains travel in the evidence, so only the root is collateral.
	vo := attest.Options{At: c.Time(t)}
	res := evaluate(t, data, vo, appraise.Options{})
	if res.Verdict != appraise.Accept {
		t.Fatalf("rejected: %v", res.Error)
	}
	gpus, ok := res.Claims.Attributes["gpus"].([]map[string]any)
	if !ok || len(gpus) != 2 {
		t.Fatalf("gpus attribute %v, expected two entries", res.Claims.Attributes["gpus"])
	}
	if got, want := res.Claims.Measurements["fwid"].String(), c.Expect.Measurements["fwid"]; got != want {
		t.Errorf("fwid %s, expected the first GPU's %s", got, want)
	}
}

func TestCorpusMultiGPUNonceMismatch(t *testing.T) {
	cases := positiveCases(t)
	if len(cases) < 2 {
		t.Skip("needs two accepted cases with different nonces")
	}
	res := evaluate(t, multiGPU(t, cases[0], cases[1]), attest.Options{At: cases[0].Time(t)}, appraise.Options{})
	if res.Verdict != appraise.Reject {
		t.Fatal("accepted GPUs with different nonces")
	}
	if !corpus.MatchesReason(errorText(res.Error), "nonce") {
		t.Errorf("error %q does not name the nonce", res.Error)
	}
}

func TestCorpusMultiGPUOneBad(t *testing.T) {
	good := positiveCases(t)[0]
	for _, c := range corpus.Cases(t, "nvidia-gpu") {
		if c.Expect.DefaultVerdict != "reject" || c.Expect.OtherInputs["cert_chain"] == "" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			res := evaluate(t, multiGPU(t, good, c), attest.Options{At: good.Time(t)}, appraise.Options{})
			if res.Verdict != appraise.Reject {
				t.Fatal("accepted an array with a bad GPU")
			}
			if !corpus.MatchesReason(errorText(res.Error), c.Expect.RejectReason) {
				t.Errorf("error %q does not state the reason %q", res.Error, c.Expect.RejectReason)
			}
		})
	}
}

func TestCorpusOtherRoot(t *testing.T) {
	c := positiveCases(t)[0]
	// The chain file ends with the NVIDIA root, but the only root file is
	// another vendor's: the copy inside the chain file must not be trusted.
	set, err := collateral.LoadPath(filepath.Join(c.Dir, c.Expect.OtherInputs["cert_chain"]))
	if err != nil {
		t.Fatal(err)
	}
	otherRoot, err := collateral.LoadPath(filepath.Join(corpus.Dir(t), "nitro", "_roots", "aws-nitro-enclaves-root-g1", "root.pem"))
	if err != nil {
		t.Skipf("no other vendor root: %v", err)
	}
	set.Merge(otherRoot)
	res := evaluate(t, c.EvidenceBytes(t), attest.Options{At: c.Time(t), Collateral: set}, appraise.Options{})
	if res.Verdict != appraise.Reject {
		t.Fatal("accepted with a chain file whose root is not the supplied root")
	}
	if !corpus.MatchesReason(errorText(res.Error), "root") {
		t.Errorf("error %q does not name the root", res.Error)
	}
}

func TestCorpusChainFileOnly(t *testing.T) {
	c := positiveCases(t)[0]
	// Without a root file, the embedded NVIDIA root verifies the chain.
	set, err := collateral.LoadPath(filepath.Join(c.Dir, c.Expect.OtherInputs["cert_chain"]))
	if err != nil {
		t.Fatal(err)
	}
	res := evaluate(t, c.EvidenceBytes(t), attest.Options{At: c.Time(t), Collateral: set}, appraise.Options{})
	if res.Verdict != appraise.Accept {
		t.Fatalf("rejected: %v", res.Error)
	}
	if res.Claims.TrustAnchor.Kind != attest.AnchorVendorRoot {
		t.Errorf("trust anchor kind %s, expected %s", res.Claims.TrustAnchor.Kind, attest.AnchorVendorRoot)
	}
}

func TestCorpusWithoutChain(t *testing.T) {
	c := positiveCases(t)[0]
	_, err := (&Verifier{}).Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, attest.Options{At: c.Time(t)})
	if !errors.Is(err, attest.ErrCollateralMissing) {
		t.Fatalf("error %v, expected ErrCollateralMissing", err)
	}
}

func TestCorpusDetectAndInspect(t *testing.T) {
	for _, c := range corpus.Cases(t, "nvidia-gpu") {
		t.Run(c.Name, func(t *testing.T) {
			data := c.EvidenceBytes(t)
			v, err := attest.Detect(data)
			if err != nil {
				t.Fatalf("detect: %v", err)
			}
			if v.Name() != "nvidia-gpu" {
				t.Fatalf("detected as %s", v.Name())
			}
			fields, err := (&Verifier{}).Inspect(data)
			if err != nil {
				t.Fatalf("inspect: %v", err)
			}
			in := fields.([]inspection)
			if got, want := in[0].RequestNonce.String(), *c.Expect.Nonce; got != want {
				t.Errorf("inspected nonce %s, expected %s", got, want)
			}
		})
	}
}

func TestCorpusPrefixesRejected(t *testing.T) {
	v := &Verifier{}
	for _, c := range corpus.Cases(t, "nvidia-gpu") {
		t.Run(c.Name, func(t *testing.T) {
			text := bytes.TrimSpace(c.EvidenceBytes(t))
			report, err := hex.DecodeString(string(text))
			if err != nil {
				t.Fatal(err)
			}
			opts := corpusOptions(t, c)
			for n := 0; n < len(report); n++ {
				if len(bytes.Trim(report[n:], "\x00")) == 0 {
					continue // the complete report without its zero padding
				}
				prefix := []byte(hex.EncodeToString(report[:n]))
				if _, err := v.Verify(context.Background(), attest.Evidence{Data: prefix}, opts); err == nil {
					t.Fatalf("prefix of %d bytes accepted", n)
				}
			}
			for _, n := range []int{1, len(text) / 2, len(text) - 1} {
				if _, err := v.Verify(context.Background(), attest.Evidence{Data: text[:n]}, opts); err == nil {
					t.Fatalf("hex prefix of %d characters accepted", n)
				}
			}
		})
	}
}

func TestDetectRejectsOtherFormats(t *testing.T) {
	v := &Verifier{}
	for _, tee := range []string{"nitro", "snp", "tdx", "tpm", "azure-vtpm", "gcp-token", "maa-token", "ita-token"} {
		if _, err := os.Stat(filepath.Join(corpus.Dir(t), tee)); err != nil {
			continue
		}
		for _, c := range corpus.Cases(t, tee) {
			if v.Detect(c.EvidenceBytes(t)) {
				t.Errorf("%s evidence detected as NVIDIA GPU evidence", c.Name)
			}
		}
	}
}

func TestCorpusConcurrentVerify(t *testing.T) {
	v := &Verifier{}
	for _, c := range positiveCases(t) {
		data, opts := c.EvidenceBytes(t), corpusOptions(t, c)
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				_, err := v.Verify(context.Background(), attest.Evidence{Data: data}, opts)
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Errorf("%s: %v", c.Name, err)
			}
		}
	}
}
