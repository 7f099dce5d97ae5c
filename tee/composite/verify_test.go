package composite

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

func checkResult(t *testing.T, c *attest.Claims, name string, want attest.CheckResult) {
	t.Helper()
	got, ok := c.FindCheck(name)
	if !ok {
		t.Errorf("check %s missing", name)
		return
	}
	if got.Result != want {
		t.Errorf("check %s is %s, want %s", name, got.Result, want)
	}
}

func TestVerifyBoundGPU(t *testing.T) {
	for _, g := range acceptedGPUCases(t) {
		e := emulator(t, false)
		data := build(t, cpuReport(t, e, g.nonce), g.report)

		claims, err := verify(data, options(e, g))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if claims.TEE != TEE {
			t.Errorf("TEE %q, want %q", claims.TEE, TEE)
		}
		if got := claims.Attributes["cpu_tee"]; got != string(attest.TEESNP) {
			t.Errorf("cpu_tee %v, want snp", got)
		}
		if !bytes.HasPrefix(claims.ReportData, g.nonce) {
			t.Errorf("report data %s does not start with the GPU nonce %x", claims.ReportData, g.nonce)
		}
		if !claims.Emulated {
			t.Error("Emulated is false for an emulated CPU report")
		}
		if claims.Debug {
			t.Error("Debug is true for a guest without debug")
		}
		if got := claims.Measurements["gpu0/fwid"].String(); got != g.fwid {
			t.Errorf("gpu0/fwid %s, want %s", got, g.fwid)
		}
		gpus, _ := claims.Attributes["gpus"].([]*attest.Claims)
		if len(gpus) != 1 || gpus[0].TEE != attest.TEENVGPU {
			t.Errorf("Attributes[gpus] = %v, want the claims of one nvidia-gpu", claims.Attributes["gpus"])
		}
		checkResult(t, claims, "signature", attest.CheckPassed)
		checkResult(t, claims, "gpu0/spdm-signature", attest.CheckPassed)
		checkResult(t, claims, "gpu0/nonce", attest.CheckPassed)
		checkResult(t, claims, "gpu0/ocsp", attest.CheckNotChecked)
		checkResult(t, claims, "gpu0/rim", attest.CheckNotChecked)
		checkResult(t, claims, "gpu-nonce-binding", attest.CheckPassed)

		if d := appraise.Appraise(claims, appraise.Options{AllowEmulated: true}); !d.Accepted {
			t.Errorf("default appraisal with emulated allowed rejects: %v", d.Err())
		}
		if d := appraise.Appraise(claims, appraise.Options{}); d.Accepted {
			t.Error("default appraisal accepts an emulated CPU report")
		}
	}
}

func TestVerifyTwoGPUs(t *testing.T) {
	g := acceptedGPUCases(t)[0]
	e := emulator(t, false)
	entry, err := json.Marshal(map[string]string{
		"attestationReportHexStr": string(g.report),
		"certChainBase64Encoded":  base64.StdEncoding.EncodeToString(g.chain),
	})
	if err != nil {
		t.Fatal(err)
	}
	data := build(t, cpuReport(t, e, g.nonce), g.report, append(append([]byte("["), entry...), ']'))

	claims, err := verify(data, options(e, g))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	checkResult(t, claims, "gpu1/spdm-signature", attest.CheckPassed)
	checkResult(t, claims, "gpu1/nonce", attest.CheckPassed)
	if _, ok := claims.Measurements["gpu1/fwid"]; !ok {
		t.Error("measurement gpu1/fwid missing")
	}
}

func TestVerifyDebugCPU(t *testing.T) {
	g := acceptedGPUCases(t)[0]
	e := emulator(t, true)
	claims, err := verify(build(t, cpuReport(t, e, g.nonce), g.report), options(e, g))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !claims.Debug {
		t.Error("Debug is false for a debug CPU guest")
	}
	if d := appraise.Appraise(claims, appraise.Options{AllowEmulated: true}); d.Accepted {
		t.Error("default appraisal accepts a debug CPU guest")
	}
}

// flipHex replaces the hexadecimal digit at i with another digit.
func flipHex(text []byte, i int) []byte {
	out := bytes.Clone(text)
	if out[i] == '0' {
		out[i] = '1'
	} else {
		out[i] = '0'
	}
	return out
}

func TestVerifyRejects(t *testing.T) {
	cases := acceptedGPUCases(t)
	g := cases[0]
	e := emulator(t, false)
	cpu := cpuReport(t, e, g.nonce)

	alteredCPU := bytes.Clone(cpu)
	alteredCPU[0x90] ^= 1 // first byte of MEASUREMENT
	// Byte 107 of the decoded report lies in measurement block 2.
	alteredGPU := flipHex(g.report, 2*107)
	otherNonce := bytes.Repeat([]byte{0xaa}, BindingSize)

	tests := []struct {
		name string
		data []byte
		kind error
		word string
	}{
		{"gpu nonce not bound", build(t, cpuReport(t, e, otherNonce), g.report), attest.ErrBinding, "nonce"},
		{"gpu report altered", build(t, cpu, alteredGPU), attest.ErrSignature, "gpus[0]"},
		{"cpu report altered", build(t, alteredCPU, g.report), attest.ErrSignature, "cpu"},
		{"empty gpu list", []byte(`{"cpu":{"format":"snp","evidence":"` + base64.StdEncoding.EncodeToString(cpu) + `"},"gpus":[]}`), attest.ErrMalformed, "gpus"},
		{"gpus missing", []byte(`{"cpu":{"evidence":"` + base64.StdEncoding.EncodeToString(cpu) + `"}}`), attest.ErrMalformed, "gpus"},
		{"cpu missing", []byte(`{"gpus":["` + string(g.report) + `"]}`), attest.ErrMalformed, "cpu"},
		{"cpu not base64", []byte(`{"cpu":{"evidence":"!!"},"gpus":["00"]}`), attest.ErrMalformed, "cpu.evidence"},
		{"gpu entry a number", []byte(`{"cpu":{"evidence":"` + base64.StdEncoding.EncodeToString(cpu) + `"},"gpus":[7]}`), attest.ErrMalformed, "gpus[0]"},
		{"gpu entry null", []byte(`{"cpu":{"evidence":"` + base64.StdEncoding.EncodeToString(cpu) + `"},"gpus":[null]}`), attest.ErrMalformed, "gpus[0]"},
		{"malformed json", []byte(`{"cpu":`), attest.ErrMalformed, "JSON"},
		{"json array", []byte(`[1,2]`), attest.ErrMalformed, "JSON object"},
		{"gpu as cpu", []byte(`{"cpu":{"format":"nvidia-gpu","evidence":"` + base64.StdEncoding.EncodeToString(g.report) + `"},"gpus":["` + string(g.report) + `"]}`), attest.ErrUnsupported, "cpu.format"},
	}
	if len(cases) > 1 && !bytes.Equal(cases[1].nonce, g.nonce) {
		tests = append(tests, struct {
			name string
			data []byte
			kind error
			word string
		}{"second gpu of another attestation", build(t, cpu, g.report, cases[1].report), attest.ErrBinding, "gpus[1]"})
	}
	opts := options(e, cases...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(tt.data, opts)
			if err == nil {
				t.Fatal("Verify accepted the evidence")
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.word) {
				t.Errorf("error %q does not name %q", err, tt.word)
			}
		})
	}
}

func TestVerifyBindingFailureClaims(t *testing.T) {
	g := acceptedGPUCases(t)[0]
	e := emulator(t, false)
	data := build(t, cpuReport(t, e, bytes.Repeat([]byte{0x55}, BindingSize)), g.report)

	claims, err := verify(data, options(e, g))
	if !errors.Is(err, attest.ErrBinding) {
		t.Fatalf("error %v, want a binding error", err)
	}
	if claims == nil {
		t.Fatal("no claims returned with the binding error")
	}
	checkResult(t, claims, "gpu-nonce-binding", attest.CheckFailed)
	checkResult(t, claims, "gpu0/nonce", attest.CheckFailed)
}

func TestVerifyRejectsOuterAux(t *testing.T) {
	g := acceptedGPUCases(t)[0]
	e := emulator(t, false)
	ev := attest.Evidence{Data: build(t, cpuReport(t, e, g.nonce), g.report), Aux: []byte{1}}

	_, err := (&Verifier{}).Verify(t.Context(), ev, options(e, g))
	if !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("error %v, want a malformed error for aux beside composite evidence", err)
	}
}

func TestBindingShortReportData(t *testing.T) {
	if _, err := Binding(make([]byte, BindingSize-1)); !errors.Is(err, attest.ErrBinding) {
		t.Errorf("Binding of 31 bytes: error %v, want a binding error", err)
	}
	got, err := Binding(bytes.Repeat([]byte{1}, 64))
	if err != nil || len(got) != BindingSize {
		t.Errorf("Binding of 64 bytes = %x, %v; want its first %d bytes", got, err, BindingSize)
	}
}

func TestDetect(t *testing.T) {
	g := acceptedGPUCases(t)[0]
	e := emulator(t, false)
	data := build(t, cpuReport(t, e, g.nonce), g.report)

	v, err := attest.Detect(data)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if v.Name() != string(TEE) {
		t.Errorf("Detect chose %s, want composite", v.Name())
	}
	for name, other := range map[string][]byte{
		"gpu report":         g.report,
		"gpu array":          []byte(`[{"attestationReportHexStr":"` + string(g.report) + `"}]`),
		"cpu report":         cpuReport(t, e, g.nonce),
		"object without cpu": []byte(`{"gpus":[]}`),
	} {
		if (&Verifier{}).Detect(other) {
			t.Errorf("Detect claims the %s", name)
		}
	}
}

func TestMarshalParseRoundTrip(t *testing.T) {
	g := acceptedGPUCases(t)[0]
	e := emulator(t, false)
	entry := []byte(`[{"evidence":"` + string(g.report) + `","arch":"HOPPER"}]`)
	in := &Evidence{CPU: attest.Evidence{Format: "snp", Data: cpuReport(t, e, g.nonce), Aux: []byte{1, 2}}, GPUs: [][]byte{g.report, entry}}
	data, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if out.CPU.Format != "snp" || !bytes.Equal(out.CPU.Data, in.CPU.Data) || !bytes.Equal(out.CPU.Aux, in.CPU.Aux) {
		t.Error("the CPU part changed in the round trip")
	}
	if len(out.GPUs) != 2 || !bytes.Equal(out.GPUs[0], g.report) {
		t.Fatalf("GPU 0 changed in the round trip")
	}
	var entries []map[string]string
	if err := json.Unmarshal(out.GPUs[1], &entries); err != nil || len(entries) != 1 || entries[0]["arch"] != "HOPPER" {
		t.Errorf("GPU 1 = %s, want a one-element array with arch HOPPER", out.GPUs[1])
	}
}

func TestPrefixesRejected(t *testing.T) {
	g := acceptedGPUCases(t)[0]
	e := emulator(t, false)
	data := build(t, cpuReport(t, e, g.nonce), g.report)
	opts := options(e, g)
	v := &Verifier{}
	for n := range len(data) {
		v.Detect(data[:n])
		if _, err := v.Verify(t.Context(), attest.Evidence{Data: data[:n]}, opts); err == nil {
			t.Fatalf("Verify accepted a %d-byte prefix of %d bytes", n, len(data))
		}
	}
}

// TestVerifyRIMFailureClaims checks that a GPU whose RIMs fail
// verification rejects the evidence with the claims proven so far, so that
// the rejection shows the failed gpu0/rim check.
func TestVerifyRIMFailureClaims(t *testing.T) {
	gpuEmulator, err := nvgpu.NewEmulator(nvgpu.EmulatorOptions{GPUs: 1})
	if err != nil {
		t.Fatalf("nvgpu.NewEmulator: %v", err)
	}
	nonce := bytes.Repeat([]byte{0x42}, BindingSize)
	gpuEvidence, err := gpuEmulator.Attest(t.Context(), nonce)
	if err != nil {
		t.Fatalf("nvgpu Attest: %v", err)
	}
	rims, err := gpuEmulator.Collateral()
	if err != nil {
		t.Fatalf("nvgpu Collateral: %v", err)
	}
	e := emulator(t, false)
	set := &collateral.Set{}
	set.Merge(e.Collateral())
	set.Merge(rims)
	// Only the device root is trusted. The RIMs' signing chain ends at the
	// RIM root, which is missing, so the RIMs fail verification.
	anchors := &collateral.Set{}
	for _, root := range []*x509.Certificate{e.Root(), gpuEmulator.Roots()[0]} {
		anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: root.Raw, Certificate: root})
	}
	opts := attest.Options{Collateral: set, TrustAnchors: anchors}

	claims, err := verify(build(t, cpuReport(t, e, nonce), gpuEvidence.Data), opts)
	if err == nil {
		t.Fatal("Verify accepted a GPU whose RIMs fail verification")
	}
	if !strings.Contains(err.Error(), "gpus[0]") {
		t.Errorf("error %q does not name gpus[0]", err)
	}
	if claims == nil {
		t.Fatal("no claims returned with the GPU's RIM failure")
	}
	if claims.TEE != TEE {
		t.Errorf("TEE %q, want %q", claims.TEE, TEE)
	}
	if !claims.Emulated {
		t.Error("Emulated is false for emulated CPU and GPU evidence")
	}
	checkResult(t, claims, "signature", attest.CheckPassed)
	checkResult(t, claims, "gpu0/spdm-signature", attest.CheckPassed)
	checkResult(t, claims, "gpu0/rim", attest.CheckFailed)
	if _, ok := claims.FindCheck("gpu-nonce-binding"); ok {
		t.Error("gpu-nonce-binding is reported although the GPUs were not all verified")
	}
}

// TestParseRejectsNestedGPUList checks that a string element of "gpus" is
// one GPU's report text, not a JSON list of several GPUs, whose FWIDs the
// composite claims would otherwise leave out.
func TestParseRejectsNestedGPUList(t *testing.T) {
	g := acceptedGPUCases(t)[0]
	e := emulator(t, false)
	entry := `{"attestationReportHexStr":"` + string(g.report) + `"}`
	cpu := base64.StdEncoding.EncodeToString(cpuReport(t, e, g.nonce))
	for name, nested := range map[string]string{
		"array":  "[" + entry + "," + entry + "]",
		"object": `{"evidence_list":[` + entry + "," + entry + "]}",
	} {
		t.Run(name, func(t *testing.T) {
			text, err := json.Marshal(nested)
			if err != nil {
				t.Fatal(err)
			}
			data := []byte(`{"cpu":{"format":"snp","evidence":"` + cpu + `"},"gpus":[` + string(text) + `]}`)
			_, err = Parse(data)
			if !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, expected ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), "gpus[0]") {
				t.Errorf("error %q does not name gpus[0]", err)
			}
			if _, err := Marshal(&Evidence{CPU: attest.Evidence{Format: "snp", Data: []byte{1}}, GPUs: [][]byte{[]byte(nested)}}); err == nil {
				t.Error("Marshal accepted a GPU document that lists several GPUs")
			}
		})
	}
}
