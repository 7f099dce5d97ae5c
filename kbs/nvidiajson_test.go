package kbs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// nativeDevice is one element of device_evidence_list as the NVIDIA
// attester of Trustee's guest components serializes it.
type nativeDevice struct {
	Arch        string `json:"arch"`
	UUID        string `json:"uuid,omitempty"`
	Evidence    string `json:"evidence"`
	Certificate string `json:"certificate"`
}

// nativeDevices rewraps the evidence of emulated GPUs as the NVIDIA
// attester sends it: the report in standard base64 and the PEM chain in
// standard base64.
func nativeDevices(t testing.TB, ev *attest.Evidence) []nativeDevice {
	t.Helper()
	gpus, err := nvgpu.ParseEvidence(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	devices := make([]nativeDevice, len(gpus))
	for i, g := range gpus {
		var chain []byte
		for _, c := range g.Chain {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		devices[i] = nativeDevice{Arch: g.Arch, UUID: g.UUID,
			Evidence:    base64.StdEncoding.EncodeToString(g.Report),
			Certificate: base64.StdEncoding.EncodeToString(chain)}
	}
	return devices
}

// nativeJSON returns the NVIDIA attester's JSON object for devices.
func nativeJSON(t testing.TB, devices []nativeDevice) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(map[string]any{nvidiaDeviceListMember: devices})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// emulatedGPUEvidence returns the evidence of gpus new emulated GPUs for a
// random nonce, the nonce and the emulator.
func emulatedGPUEvidence(t testing.TB, gpus int) (*attest.Evidence, []byte, *nvgpu.Emulator) {
	t.Helper()
	gpu, err := nvgpu.NewEmulator(nvgpu.EmulatorOptions{GPUs: gpus})
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	ev, err := gpu.Attest(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	return ev, nonce, gpu
}

// emulatorAnchors returns the emulator's development roots as trust
// anchors.
func emulatorAnchors(gpu *nvgpu.Emulator) *collateral.Set {
	set := &collateral.Set{}
	for _, root := range gpu.Roots() {
		set.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "test", Raw: root.Raw, Certificate: root})
	}
	return set
}

// The NVIDIA attester's JSON decodes into nvidia-gpu evidence that the
// verifier accepts for the attester's nonce, in each encoding and arch
// spelling that Trustee's verifier accepts.
func TestNVIDIADeviceJSONVerifies(t *testing.T) {
	ev, nonce, gpu := emulatedGPUEvidence(t, 2)
	tests := []struct {
		name   string
		change func(d *nativeDevice)
		// wantUUID is set when the claims must carry the device's UUID.
		wantUUID bool
	}{
		{"base64 report, upper-case arch", func(d *nativeDevice) {}, true},
		{"hexadecimal report, capitalized arch", func(d *nativeDevice) {
			report, _ := base64.StdEncoding.DecodeString(d.Evidence)
			d.Evidence = hex.EncodeToString(report)
			d.Arch = "Hopper"
		}, true},
		{"upper-case hexadecimal report", func(d *nativeDevice) {
			report, _ := base64.StdEncoding.DecodeString(d.Evidence)
			d.Evidence = strings.ToUpper(hex.EncodeToString(report))
		}, true},
		{"no uuid", func(d *nativeDevice) { d.UUID = "" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			devices := nativeDevices(t, ev)
			uuids := make([]string, len(devices))
			for i := range devices {
				uuids[i] = devices[i].UUID
				tc.change(&devices[i])
			}
			decoded, err := DecodeEvidence("nvidia", nativeJSON(t, devices))
			if err != nil {
				t.Fatalf("DecodeEvidence: %v", err)
			}
			if decoded.Format != string(attest.TEENVGPU) {
				t.Errorf("format %q, expected %q", decoded.Format, attest.TEENVGPU)
			}

			claims, err := (&nvgpu.Verifier{}).Verify(context.Background(), decoded,
				attest.Options{TrustAnchors: emulatorAnchors(gpu), Nonce: nonce})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if check, _ := claims.FindCheck("nonce"); check.Result != attest.CheckPassed {
				t.Errorf("nonce check %q, expected passed", check.Result)
			}
			gpus, _ := claims.Attributes["gpus"].([]map[string]any)
			if len(gpus) != 2 {
				t.Fatalf("gpus attribute has %d entries, expected 2", len(gpus))
			}
			for i, g := range gpus {
				if g["arch"] != "HOPPER" {
					t.Errorf("GPU %d arch %v, expected HOPPER", i, g["arch"])
				}
				uuid, has := g["uuid_unverified"]
				if tc.wantUUID && uuid != uuids[i] {
					t.Errorf("GPU %d uuid %v, expected %s", i, uuid, uuids[i])
				}
				if !tc.wantUUID && has {
					t.Errorf("GPU %d has uuid %v, but the evidence has none", i, uuid)
				}
			}
		})
	}
}

// Every malformed element of the NVIDIA attester's JSON is rejected with
// an error that names the member.
func TestNVIDIADeviceJSONRejects(t *testing.T) {
	ev, _, _ := emulatedGPUEvidence(t, 1)
	good := nativeDevices(t, ev)[0]
	entry := func(change func(m map[string]any)) string {
		m := map[string]any{"arch": good.Arch, "uuid": good.UUID, "evidence": good.Evidence, "certificate": good.Certificate}
		change(m)
		data, _ := json.Marshal(m)
		return string(data)
	}
	list := func(entries ...string) string {
		return `{"device_evidence_list":[` + strings.Join(entries, ",") + `]}`
	}
	goodEntry := entry(func(map[string]any) {})
	certificateOf := func(data []byte) func(m map[string]any) {
		return func(m map[string]any) { m["certificate"] = base64.StdEncoding.EncodeToString(data) }
	}
	chainPEM, _ := base64.StdEncoding.DecodeString(good.Certificate)
	block, _ := pem.Decode(chainPEM)
	badCertificate := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes[:len(block.Bytes)/2]})
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	tooMany := make([]string, maxNVIDIADevices+1)
	for i := range tooMany {
		tooMany[i] = goodEntry
	}

	tests := []struct {
		name string
		raw  string
		// want are texts the error must contain: the member and the cause.
		want     []string
		wantKind error
	}{
		{"empty list", list(), []string{"device_evidence_list", "empty"}, attest.ErrMalformed},
		{"null list", `{"device_evidence_list":null}`, []string{"device_evidence_list", "not a JSON array"}, attest.ErrMalformed},
		{"list is an object", `{"device_evidence_list":{}}`, []string{"device_evidence_list", "not a JSON array"}, attest.ErrMalformed},
		{"too many devices", list(tooMany...), []string{"device_evidence_list", "13 devices"}, attest.ErrMalformed},
		{"entry is a string", list(`"x"`), []string{"device_evidence_list[0]", "not a JSON object"}, attest.ErrMalformed},
		{"entry is null", list(`null`), []string{"device_evidence_list[0]", "not a JSON object"}, attest.ErrMalformed},
		{"repeated list", `{"device_evidence_list":[],"device_evidence_list":[` + goodEntry + `]}`, []string{"duplicate member", "device_evidence_list"}, attest.ErrMalformed},
		{"repeated member in an entry", list(`{"arch":"HOPPER",` + goodEntry[1:]), []string{"duplicate member", "arch"}, attest.ErrMalformed},
		{"missing arch", list(entry(func(m map[string]any) { delete(m, "arch") })), []string{"device_evidence_list[0].arch", "missing"}, attest.ErrMalformed},
		{"arch is a number", list(entry(func(m map[string]any) { m["arch"] = 9 })), []string{"device_evidence_list[0].arch", "not a JSON string"}, attest.ErrMalformed},
		{"lower-case arch", list(entry(func(m map[string]any) { m["arch"] = "hopper" })), []string{"device_evidence_list[0].arch", `"hopper"`, "HOPPER or BLACKWELL"}, attest.ErrUnsupported},
		{"GPU of another architecture", list(entry(func(m map[string]any) { m["arch"] = "Ampere" })), []string{"device_evidence_list[0].arch", `"Ampere"`}, attest.ErrUnsupported},
		{"NVSwitch", list(goodEntry, entry(func(m map[string]any) { m["arch"] = "LS10" })), []string{"device_evidence_list[1].arch", "NVSwitch"}, attest.ErrUnsupported},
		{"null uuid", list(entry(func(m map[string]any) { m["uuid"] = nil })), []string{"device_evidence_list[0].uuid", "not a JSON string"}, attest.ErrMalformed},
		{"missing evidence", list(entry(func(m map[string]any) { delete(m, "evidence") })), []string{"device_evidence_list[0].evidence", "missing"}, attest.ErrMalformed},
		{"empty evidence", list(entry(func(m map[string]any) { m["evidence"] = "" })), []string{"device_evidence_list[0].evidence", "missing or empty"}, attest.ErrMalformed},
		{"evidence as bytes", list(entry(func(m map[string]any) { m["evidence"] = []int{17, 224} })), []string{"device_evidence_list[0].evidence", "not a JSON string"}, attest.ErrMalformed},
		{"evidence neither base64 nor hexadecimal", list(entry(func(m map[string]any) { m["evidence"] = "EeA@" })), []string{"device_evidence_list[0].evidence", "neither standard base64 nor hexadecimal"}, attest.ErrMalformed},
		{"missing certificate", list(entry(func(m map[string]any) { delete(m, "certificate") })), []string{"device_evidence_list[0].certificate", "missing"}, attest.ErrMalformed},
		{"empty certificate", list(entry(func(m map[string]any) { m["certificate"] = "" })), []string{"device_evidence_list[0].certificate", "missing or empty"}, attest.ErrMalformed},
		{"certificate not base64", list(entry(func(m map[string]any) { m["certificate"] = "LS0t@" })), []string{"device_evidence_list[0].certificate", "not standard base64"}, attest.ErrMalformed},
		{"certificate in DER", list(entry(certificateOf(block.Bytes))), []string{"device_evidence_list[0].certificate", "no PEM certificate"}, attest.ErrMalformed},
		{"invalid certificate", list(entry(certificateOf(badCertificate))), []string{"device_evidence_list[0].certificate", "certificate 0 of the chain is invalid"}, attest.ErrMalformed},
		{"key in the chain", list(entry(certificateOf(append(chainPEM, key...)))), []string{"device_evidence_list[0].certificate", `"PRIVATE KEY"`}, attest.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEvidence("nvidia", json.RawMessage(tc.raw))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if !errors.Is(err, tc.wantKind) {
				t.Errorf("error %q is not %v", err, tc.wantKind)
			}
		})
	}
}

// An nvidia evidence object is read by its members: with both the
// envelope's data and device_evidence_list, or with neither, it is
// rejected.
func TestNVIDIAEvidenceFormByMembers(t *testing.T) {
	ev, _, _ := emulatedGPUEvidence(t, 1)
	envelope, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	native := nativeJSON(t, nativeDevices(t, ev))
	both := append(append([]byte(nil), envelope[:len(envelope)-1]...), ',')
	both = append(both, native[1:]...)

	tests := []struct {
		name string
		raw  []byte
		// want is a text of the error, or "" when the evidence decodes.
		want string
	}{
		{"envelope", envelope, ""},
		{"native", native, ""},
		{"both", both, "both data and device_evidence_list"},
		{"neither", []byte(`{"evidence_list":[]}`), "neither device_evidence_list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			decoded, err := DecodeEvidence("nvidia", tc.raw)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("DecodeEvidence: %v", err)
				}
				if decoded.Format != string(attest.TEENVGPU) {
					t.Errorf("format %q, expected %q", decoded.Format, attest.TEENVGPU)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, expected one that contains %q", err, tc.want)
			}
		})
	}
}

// The device_evidence_list member means NVIDIA evidence only under the
// nvidia tee.
func TestNVIDIADeviceJSONOtherTEE(t *testing.T) {
	ev, _, _ := emulatedGPUEvidence(t, 1)
	native := nativeJSON(t, nativeDevices(t, ev))
	for _, tee := range []string{"snp", "tdx", "hygondcu"} {
		if _, err := DecodeEvidence(tee, native); err == nil {
			t.Errorf("%s session accepted the NVIDIA attester's JSON", tee)
		}
	}
}

// nvgpuAppraiser verifies nvidia-gpu evidence under the emulator's roots
// and accepts every verified result, so that only the binding decides.
type nvgpuAppraiser struct{ anchors *collateral.Set }

func (a nvgpuAppraiser) Appraise(ctx context.Context, tee string, ev attest.Evidence) (*Verdict, error) {
	c, err := (&nvgpu.Verifier{}).Verify(ctx, ev, attest.Options{TrustAnchors: a.anchors})
	if err != nil {
		return nil, err
	}
	return &Verdict{Claims: c, Decision: &appraise.Decision{Accepted: true}}, nil
}

// GPUs whose SPDM nonce is the first 32 bytes of the device digest are
// bound. Others are rejected with a fix that names the device runtime data
// and the SPDM nonce.
func TestAppraiseBoundNVIDIADeviceJSON(t *testing.T) {
	gpu, err := nvgpu.NewEmulator(nvgpu.EmulatorOptions{GPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Appraiser: nvgpuAppraiser{anchors: emulatorAnchors(gpu)}}
	key := TEEPubKey{Kty: "EC", Crv: "P-256", Alg: AlgECDHESA256KW, X: "eA", Y: "eQ"}
	digest, err := DeviceDigest(DefaultHash, "session nonce", key)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		nonce []byte
		bound bool
	}{
		{"first 32 bytes of the device digest", digest[:32], true},
		{"last 32 bytes of the device digest", digest[len(digest)-32:], false},
		{"another nonce", bytes.Repeat([]byte{0x5a}, 32), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := gpu.Attest(context.Background(), tc.nonce)
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := DecodeEvidence("nvidia", nativeJSON(t, nativeDevices(t, ev)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.appraiseBound(context.Background(), "nvidia", decoded, digest, deviceRuntimeData)
			if tc.bound {
				if err != nil {
					t.Fatalf("bound GPUs rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, attest.ErrBinding) {
				t.Fatalf("error %v, expected a binding error", err)
			}
			for _, want := range []string{"GET_MEASUREMENTS nonce", "first 32 bytes", "{nonce, tee-pubkey}", "SPDM nonce"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// Real GPU reports of the evidence corpus, rewrapped as the NVIDIA
// attester sends them (base64, and hexadecimal as before October 2025),
// get the corpus verdict from the nvidia-gpu verifier.
func TestNVIDIADeviceJSONCorpus(t *testing.T) {
	for _, c := range corpus.Cases(t, "nvidia-gpu") {
		chainFile := c.Expect.OtherInputs["cert_chain"]
		if chainFile == "" || c.Expect.Nonce == nil {
			continue
		}
		chain, err := os.ReadFile(filepath.Join(c.Dir, chainFile))
		if err != nil {
			t.Fatal(err)
		}
		reportHex := strings.TrimSpace(string(c.EvidenceBytes(t)))
		report, err := hex.DecodeString(reportHex)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		nonce, err := hex.DecodeString(*c.Expect.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		for _, encoding := range []struct {
			name     string
			evidence string
		}{
			{"base64", base64.StdEncoding.EncodeToString(report)},
			{"hexadecimal", reportHex},
		} {
			t.Run(c.Name+"/"+encoding.name, func(t *testing.T) {
				native := nativeJSON(t, []nativeDevice{{Arch: "HOPPER", UUID: "GPU-test",
					Evidence: encoding.evidence, Certificate: base64.StdEncoding.EncodeToString(chain)}})
				decoded, err := DecodeEvidence("nvidia", native)
				if err != nil {
					t.Fatalf("DecodeEvidence: %v", err)
				}
				claims, err := (&nvgpu.Verifier{}).Verify(context.Background(), decoded, attest.Options{At: c.Time(t), Nonce: nonce})
				if c.Expect.DefaultVerdict == "reject" {
					if err == nil {
						t.Fatal("accepted evidence that the corpus rejects")
					}
					if !corpus.MatchesReason(err.Error(), c.Expect.RejectReason) {
						t.Errorf("error %q does not state the reason %q", err, c.Expect.RejectReason)
					}
					return
				}
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got := hex.EncodeToString(claims.Nonce); got != *c.Expect.Nonce {
					t.Errorf("nonce %s, expected %s", got, *c.Expect.Nonce)
				}
				if got, want := claims.Measurements["fwid"].String(), c.Expect.Measurements["fwid"]; got != want {
					t.Errorf("fwid %s, expected %s", got, want)
				}
			})
		}
	}
}
