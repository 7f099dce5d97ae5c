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

func evaluate(t *testing.T, data []byte, vo attest.Options, ao appraise.Options) *appraise.Result {
	t.Helper()
	return appraise.Evaluate(context.Background(), attest.Evidence{Format: "nvidia-gpu", Data: data}, vo, ao)
}

func TestCorpusVerdicts(t *testing.T) {
	for _, c := range corpus.Cases(t, "nvidia-gpu") {
		t.Run(c.Name, func(t *testing.T) {
			corpus.CheckVerdicts(t, c, attest.Evidence{Format: "nvidia-gpu", Data: c.EvidenceBytes(t)}, c.Options(t))
		})
	}
}

func TestCorpusClaims(t *testing.T) {
	for _, c := range corpus.Cases(t, "nvidia-gpu") {
		t.Run(c.Name, func(t *testing.T) {
			res := evaluate(t, c.EvidenceBytes(t), c.Options(t), appraise.Options{})
			if corpus.CheckUnverified(t, c, res) {
				return
			}
			corpus.CheckClaims(t, c, res.Claims)
			cl := res.Claims
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
				if ch, _ := cl.FindCheck(name); ch.Result != attest.CheckNotChecked {
					t.Errorf("check %s not recorded as not checked: %+v", name, cl.Checks)
				}
			}
		})
	}
}

func TestCorpusExpectedNonce(t *testing.T) {
	corpus.CheckNonceBindings(t, "nvidia-gpu")
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
	if !corpus.MatchesReason(corpus.ErrorText(res.Error), "nonce") {
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
			if !corpus.MatchesReason(corpus.ErrorText(res.Error), c.Expect.RejectReason) {
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
	if !corpus.MatchesReason(corpus.ErrorText(res.Error), "root") {
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
			opts := c.Options(t)
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
	for _, c := range corpus.PresentCases(t, "nitro", "snp", "tdx", "tpm", "azure-vtpm", "gcp-token", "maa-token", "ita-token") {
		if v.Detect(c.EvidenceBytes(t)) {
			t.Errorf("%s evidence detected as NVIDIA GPU evidence", c.Name)
		}
	}
}

func TestCorpusConcurrentVerify(t *testing.T) {
	corpus.CheckConcurrentVerify(t, &Verifier{}, positiveCases(t))
}
