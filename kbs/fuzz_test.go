package kbs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// seedVectors adds every vector file's JSON values that parse as an object
// to f, so that fuzzing starts from real protocol messages.
func seedVectors(f *testing.F, members ...string) {
	dir := os.Getenv("CLOISTER_KBS_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "protocols", "kbs-vectors")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal(data, &doc) != nil {
			continue
		}
		for _, m := range members {
			if v, ok := doc[m]; ok {
				var s string
				if json.Unmarshal(v, &s) == nil {
					f.Add([]byte(s))
				} else {
					f.Add([]byte(v))
				}
			}
		}
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
}

func FuzzParseAttestation(f *testing.F) {
	seedVectors(f, "attest_request_body_bytes", "attest_request_body")
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAttestation(data)
		if err != nil {
			return
		}
		PrimaryDigest(SHA384, a.RuntimeData.Nonce, a.RuntimeData.TEEPubKey, a.TEEEvidence.AdditionalEvidence)
		checkTEEKey(a.RuntimeData.TEEPubKey)
		parseAdditionalEvidence(a.TEEEvidence.AdditionalEvidence)
		if ev, err := DecodeEvidence("sample", a.TEEEvidence.PrimaryEvidence); err == nil {
			SampleVerifier{}.Verify(context.Background(), ev, attestOptions())
		}
		DecodeEvidence("snp", a.TEEEvidence.PrimaryEvidence)
	})
}

// FuzzParseRequest checks that an accepted /auth body decodes to what
// json.Unmarshal gives after exactReferenceObject kept its exactly named
// members, and that a body with a repeated member is rejected.
func FuzzParseRequest(f *testing.F) {
	seedVectors(f, "auth_request_body_bytes")
	f.Add([]byte(`{"version":"0.4.0","tee":"snp","extra-params":"","Version":"1"}`))
	f.Add([]byte(`{"version":"0.4.0","tee":"snp","tee":"tdx","extra-params":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRequest(data)
		if !json.Valid(data) {
			if err == nil {
				t.Fatalf("invalid JSON %q accepted", data)
			}
			return
		}
		exact, refErr := exactReferenceObject(data, keepNames("version", "tee", "extra-params"))
		if refErr != nil {
			if err == nil {
				t.Fatalf("body %q with a repeated member accepted", data)
			}
			return
		}
		if err != nil {
			return
		}
		var want Request
		if err := json.Unmarshal(exact, &want); err != nil {
			t.Fatalf("body %q accepted, but its exact members do not decode: %v", data, err)
		}
		if r.Version != want.Version || r.TEE != want.TEE || !bytes.Equal(r.ExtraParams, want.ExtraParams) {
			t.Fatalf("body %q = %+v, want %+v", data, r, want)
		}
		versionMatches(r.Version)
	})
}

func FuzzCanonicalize(f *testing.F) {
	seedVectors(f, "primary_runtime_data_canonical", "runtime_data", "primary_runtime_data")
	f.Add([]byte(`{"b":1e30,"a":[1.5,-0,"\u0001"],"c":{"\ud83d\ude00":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Canonicalize(data)
		if err != nil {
			return
		}
		// The canonical form is valid JSON and a fixed point.
		again, err := Canonicalize(c)
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", c, err)
		}
		if string(again) != string(c) {
			t.Fatalf("canonical form is not stable: %q then %q", c, again)
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	seedVectors(f, "response_body_bytes")
	priv, err := GenerateKey("P-256")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseResponse(data)
		if err != nil {
			return
		}
		Decrypt(priv, r)
	})
}

// Every prefix of the sample exchange's /attest body is rejected or parsed
// without a panic.
func TestAttestationPrefixes(t *testing.T) {
	f := loadSampleFlow(t)
	body := []byte(f.AttestRequestBytes)
	for i := range body {
		ParseAttestation(body[:i])
	}
	if _, err := ParseAttestation(body[:len(body)-1]); err == nil {
		t.Error("a truncated body parsed")
	}
}

func attestOptions() attest.Options { return attest.Options{} }

func FuzzDecodeSNPGuestJSON(f *testing.F) {
	dir := os.Getenv("CLOISTER_KBS_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "protocols", "kbs-vectors")
	}
	if data, err := os.ReadFile(filepath.Join(dir, "trustee_snp-evidence-guest-json.json")); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"attestation_report":{},"cert_chain":null}`))
	f.Add(zeroSNPGuestJSON(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeEvidence("snp", data)
	})
}

// zeroSNPGuestJSON returns snp guest evidence in which every report field
// has its full size and the value zero, and the chain has one empty VCEK
// entry. It seeds the fuzzer with the whole layout when the Trustee vector
// is not at hand.
func zeroSNPGuestJSON(f *testing.F) []byte {
	zeros := func(n int) []int { return make([]int, n) }
	tcb := map[string]int{"bootloader": 0, "tee": 0, "snp": 0, "microcode": 0}
	version := map[string]int{"major": 0, "minor": 0, "build": 0}
	report := map[string]any{
		"version": 3, "guest_svn": 0, "policy": 0x30000, "family_id": zeros(16), "image_id": zeros(16),
		"vmpl": 0, "sig_algo": 1, "current_tcb": tcb, "plat_info": 0, "key_info": 0,
		"report_data": zeros(64), "measurement": zeros(48), "host_data": zeros(32),
		"id_key_digest": zeros(48), "author_key_digest": zeros(48), "report_id": zeros(32),
		"report_id_ma": zeros(32), "reported_tcb": tcb, "cpuid_fam_id": 25, "cpuid_mod_id": 1, "cpuid_step": 1,
		"chip_id": zeros(64), "committed_tcb": tcb, "current": version, "committed": version, "launch_tcb": tcb,
		"signature": map[string]any{"r": zeros(72), "s": zeros(72)},
	}
	data, err := json.Marshal(map[string]any{
		"attestation_report": report,
		"cert_chain":         []any{map[string]any{"cert_type": "VCEK", "data": zeros(0)}},
	})
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzParseProblem decodes error bodies from a key broker, seeded with the
// bodies of two error variants. An accepted body has a type and keeps its
// status. A rejected body appears in the error only as a 200-rune excerpt,
// which quoting expands to at most 10 bytes a rune.
func FuzzParseProblem(f *testing.F) {
	for _, p := range []*Problem{
		NewProblem(ProblemPolicyDeny, "Access denied by policy"),
		NewProblem(ProblemTokenNotFound, "the token is missing"),
	} {
		body, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"type":"","detail":"x"}`))
	f.Add([]byte(`<html>Bad Gateway</html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseProblem(401, body)
		if err != nil {
			if limit := 200*10 + 100; len(err.Error()) > limit {
				t.Errorf("error is %d bytes, want at most %d: the body excerpt is not cut", len(err.Error()), limit)
			}
			return
		}
		if p.Type == "" || p.Status != 401 {
			t.Errorf("ParseProblem(%q) = %+v, want a type and status 401", body, p)
		}

		// Error prints the type and detail cut and, where needed, quoted.
		text := p.Error()
		if limit := 2*(200*10+3) + 30; len(text) > limit {
			t.Errorf("Error() is %d bytes, want at most %d", len(text), limit)
		}
		if strings.ContainsAny(text, "\n\r\x1b") {
			t.Errorf("Error() = %q contains a control character", text)
		}
	})
}

// FuzzDecodeEvidence decodes evidence values for every TEE name a session
// may carry, seeded with the Trustee attesters' JSON and the evidence
// envelope. Accepted evidence has data and a format.
func FuzzDecodeEvidence(f *testing.F) {
	dir := os.Getenv("CLOISTER_KBS_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "protocols", "kbs-vectors")
	}
	for _, name := range []string{"trustee_snp-evidence-guest-json.json", "trustee_az-snp-vtpm-evidence-v2.json"} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"format":"dcap","data":"AwACAA==","aux":""}`))
	f.Add([]byte(`{"format":5,"format":"dcap","data":"AwACAA==","aux":{},"aux":null}`))
	f.Add([]byte(`{"format":"dcap","data":"AwACAA==","d\u0061ta":"AwACAA=="}`))
	f.Add([]byte(`{"quote":"AwACAA==","cc_eventlog":null}`))
	f.Add([]byte(`{"quote":"AwACAA==","cc_eventlog":"AAAAAAMAAAA="}`))
	f.Add([]byte(`{"tpm_quote":{}}`))
	f.Add([]byte(`{"svn":"1","report_data":""}`))
	f.Add([]byte(nativeNVIDIASeed(f)))
	f.Add([]byte(`{"device_evidence_list":[{"arch":"LS10","evidence":"","certificate":""}],"data":null}`))
	tees := []string{"snp", "tdx", "sgx", "az-snp-vtpm", "az-tdx-vtpm", "sample", "sampledevice", "nvidia", "cca"}
	f.Fuzz(func(t *testing.T, data []byte) {
		// An accepted envelope whose member names are exact must decode as
		// encoding/json decodes it into attest.Evidence. encoding/json also
		// matches other cases of the names, which DecodeEvidence does not,
		// so such envelopes are not compared. An envelope that repeats
		// format, data or aux must be rejected.
		repeated := false
		if obj, err := jsonvalue.ParseEncodedObject(data); err == nil && json.Valid(data) {
			if _, isEnvelope := obj.Get("data"); isEnvelope {
				for _, field := range []string{"format", "data", "aux"} {
					count := 0
					for range obj.All(field) {
						count++
					}
					repeated = repeated || count > 1
				}
			}
		}
		var members map[string]json.RawMessage
		compare := json.Unmarshal(data, &members) == nil && members["data"] != nil
		for name := range members {
			for _, field := range []string{"format", "data", "aux"} {
				if name != field && strings.EqualFold(name, field) {
					compare = false
				}
			}
		}
		var envelope attest.Evidence
		envelopeErr := json.Unmarshal(data, &envelope)
		for _, tee := range tees {
			ev, err := DecodeEvidence(tee, data)
			if err == nil && (len(ev.Data) == 0 || ev.Format == "") {
				t.Errorf("DecodeEvidence(%q) accepted evidence without data or format: %+v", tee, ev)
			}
			if err == nil && repeated && tee != "sample" && tee != "sampledevice" {
				t.Errorf("DecodeEvidence(%q) accepted an envelope with a repeated member: %+v", tee, ev)
			}
			if err != nil || !compare || tee == "sample" || tee == "sampledevice" {
				continue
			}
			if envelopeErr != nil {
				t.Errorf("DecodeEvidence(%q) accepted an envelope that encoding/json rejects: %v", tee, envelopeErr)
				continue
			}
			if !bytes.Equal(ev.Data, envelope.Data) || !bytes.Equal(ev.Aux, envelope.Aux) ||
				(envelope.Format != "" && ev.Format != envelope.Format) {
				t.Errorf("DecodeEvidence(%q) = %+v, encoding/json gives %+v", tee, ev, envelope)
			}
		}
	})
}

// FuzzSelectedHash reads the extra-params of a challenge. A nil error
// names a hash that can be created.
func FuzzSelectedHash(f *testing.F) {
	for _, s := range []string{``, `null`, `{}`, `{"selected-hash-algorithm":"SHA384"}`, `{"selected-hash-algorithm":1}`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := SelectedHash(data)
		if err != nil {
			return
		}
		if _, err := h.New(); err != nil {
			t.Errorf("SelectedHash(%q) = %q, which has no hash: %v", data, h, err)
		}
	})
}

// FuzzTokenReasons reads the appraisal reasons of unverified tokens, which
// come from the client, so that nesting or odd types cannot panic.
func FuzzTokenReasons(f *testing.F) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(
		`{"submods":{"cpu":{"cloister.reasons":[{"rule":"debug","message":"debug is enabled"},1,null]}}}`))
	f.Add("e30." + payload + ".c2ln")
	f.Add("..")
	f.Add("a.!.b")
	f.Fuzz(func(t *testing.T, token string) {
		tokenReasons(token)
	})
}

// FuzzParseAdditionalEvidence checks that any additional_evidence string is
// split into known device TEEs in name order or rejected, without a panic.
func FuzzParseAdditionalEvidence(f *testing.F) {
	for _, seed := range []string{``, `{}`, `{"nvidia":{"evidence_list":[]}}`, `{"sampledevice":"x","nvidia":[]}`, `{"unknown":1}`, `[]`, `{"nvidia":`} {
		f.Add(seed)
	}
	f.Add(`{"nvidia":` + nativeNVIDIASeed(f) + `}`)
	f.Fuzz(func(t *testing.T, s string) {
		devices, err := parseAdditionalEvidence(s)
		if err != nil {
			return
		}
		for i, d := range devices {
			if !knownTEEs[d.tee] {
				t.Fatalf("accepted unknown device TEE %q", d.tee)
			}
			if i > 0 && devices[i-1].tee >= d.tee {
				t.Fatalf("devices not in name order: %q before %q", devices[i-1].tee, d.tee)
			}
		}
	})
}

// nativeNVIDIASeed returns the JSON that the NVIDIA attester of Trustee's
// guest components sends for two emulated GPUs.
func nativeNVIDIASeed(f *testing.F) string {
	ev, _, _ := emulatedGPUEvidence(f, 2)
	return string(nativeJSON(f, nativeDevices(f, ev)))
}

// FuzzDecodeNVIDIADeviceJSON decodes the NVIDIA attester's JSON. Accepted
// evidence is a GPU array that the nvidia-gpu verifier parses, with one
// entry per listed device, each with a report, a certificate chain and an
// upper-case GPU architecture.
func FuzzDecodeNVIDIADeviceJSON(f *testing.F) {
	f.Add([]byte(nativeNVIDIASeed(f)))
	f.Add([]byte(`{"device_evidence_list":[]}`))
	f.Add([]byte(`{"device_evidence_list":[{"arch":"Hopper","evidence":"11e0","certificate":"LS0tLS1CRUdJTg=="}]}`))
	f.Add([]byte(`{"device_evidence_list":[{"arch":"HOPPER","uuid":null,"evidence":"EeA=","certificate":""}],"x":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvidence("nvidia", data)
		if err != nil {
			return
		}
		var top struct {
			List []json.RawMessage `json:"device_evidence_list"`
		}
		if json.Unmarshal(data, &top) != nil || len(top.List) == 0 {
			// Cloister's envelope, which other fuzz targets check.
			return
		}
		if ev.Format != string(attest.TEENVGPU) {
			t.Fatalf("format %q, expected %q", ev.Format, attest.TEENVGPU)
		}
		gpus, err := nvgpu.ParseEvidence(ev.Data)
		if err != nil {
			t.Fatalf("the converted evidence does not parse: %v", err)
		}
		if len(gpus) != len(top.List) || len(gpus) > maxNVIDIADevices {
			t.Fatalf("%d GPUs from %d listed devices", len(gpus), len(top.List))
		}
		for i, g := range gpus {
			if len(g.Report) == 0 || len(g.Chain) == 0 {
				t.Errorf("GPU %d has a report of %d bytes and %d certificates", i, len(g.Report), len(g.Chain))
			}
			if g.Arch != "HOPPER" && g.Arch != "BLACKWELL" {
				t.Errorf("GPU %d arch %q, expected HOPPER or BLACKWELL", i, g.Arch)
			}
		}
	})
}
