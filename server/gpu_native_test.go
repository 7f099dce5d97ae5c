package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// trusteeNVIDIADevice is one element of device_evidence_list as the NVIDIA
// attester of Trustee's guest components serializes it.
type trusteeNVIDIADevice struct {
	Arch        string `json:"arch"`
	UUID        string `json:"uuid"`
	Evidence    string `json:"evidence"`
	Certificate string `json:"certificate"`
}

// trusteeAdditionalEvidence returns the additional_evidence string of a
// Trustee guest whose NVIDIA attester collected the emulated GPUs' evidence
// for nonce: {"nvidia": {"device_evidence_list": [...]}}, with each report
// and PEM chain in standard base64.
func trusteeAdditionalEvidence(t *testing.T, gpu *nvgpu.Emulator, nonce []byte) string {
	t.Helper()
	ev, err := gpu.Attest(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	gpus, err := nvgpu.ParseEvidence(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	devices := make([]trusteeNVIDIADevice, len(gpus))
	for i, g := range gpus {
		var chain []byte
		for _, c := range g.Chain {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		devices[i] = trusteeNVIDIADevice{Arch: "HOPPER", UUID: g.UUID,
			Evidence:    base64.StdEncoding.EncodeToString(g.Report),
			Certificate: base64.StdEncoding.EncodeToString(chain)}
	}
	data, err := json.Marshal(map[string]any{"nvidia": map[string]any{"device_evidence_list": devices}})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// A Trustee guest on emulated SEV-SNP with emulated GPUs attests over HTTP
// on loopback, with the GPUs' evidence in additional_evidence as Trustee's
// NVIDIA attester writes it. The token's gpu0 submodule carries both GPUs
// with the rim check passed, and the secret is released to the TEE key.
// GPUs whose SPDM nonce is not the first 32 bytes of the device digest
// reject the attestation.
func TestTrusteeNVIDIAAttesterEvidence(t *testing.T) {
	gpu := newGPUEmulator(t, 2)
	tests := []struct {
		name string
		// nonce returns the GPUs' SPDM nonce from the device digest.
		nonce func(deviceDigest []byte) []byte
		bound bool
	}{
		{"GPUs bound to the device digest", func(d []byte) []byte { return kbs.ReportDataFor("nvidia", d) }, true},
		{"GPUs bound to another nonce", func([]byte) []byte { return bytes.Repeat([]byte{0x5a}, 32) }, false},
		{"GPUs bound to the end of the device digest", func(d []byte) []byte { return d[len(d)-32:] }, false},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := gpuService(t, b, gpu, true)
		ctx := context.Background()
		if _, err := ts.store.PutPolicy(ctx, store.PolicyAttestation, string(attest.TEENVGPU), rimRequiredPolicy); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.store.PutPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName, gpuRIMPolicy); err != nil {
			t.Fatal(err)
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				jar, _ := cookiejar.New(nil)
				nonce := auth(t, ts, jar)
				key, _ := kbs.GenerateKey("P-256")
				pub, _ := kbs.PublicKeyJWK(key)
				deviceDigest, err := kbs.DeviceDigest(kbs.DefaultHash, nonce, pub)
				if err != nil {
					t.Fatal(err)
				}
				additional := trusteeAdditionalEvidence(t, gpu, tc.nonce(deviceDigest))
				digest, err := kbs.PrimaryDigest(kbs.DefaultHash, nonce, pub, additional)
				if err != nil {
					t.Fatal(err)
				}
				cpu, err := testEmulators(t)["good"].Attest(ctx, digest)
				if err != nil {
					t.Fatal(err)
				}
				primary, _ := json.Marshal(cpu)
				body, _ := json.Marshal(kbs.Attestation{RuntimeData: kbs.RuntimeData{Nonce: nonce, TEEPubKey: pub},
					TEEEvidence: kbs.TEEEvidence{PrimaryEvidence: primary, AdditionalEvidence: additional}})

				resp := post(t, ts, jar, "/kbs/v0/attest", string(body))
				if !tc.bound {
					wantProblemResponse(t, resp, kbs.ProblemAttestationError, http.StatusUnauthorized)
					wantLastDenial(t, ts.store, "binding mismatch: GET_MEASUREMENTS nonce")
					return
				}
				if resp.StatusCode != http.StatusOK {
					b, _ := io.ReadAll(resp.Body)
					t.Fatalf("attest: %s %s", resp.Status, b)
				}
				var tok kbs.AttestationToken
				if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
					t.Fatal(err)
				}
				statuses := submodStatuses(t, tok.Token)
				if statuses["gpu0"] != ear.StatusAffirming {
					t.Errorf("gpu0 ear.status %s, expected affirming", statuses["gpu0"])
				}
				claims := gpuSubmod(t, tok.Token)
				if got := checkResultIn(claims, "rim"); got != string(attest.CheckPassed) {
					t.Errorf("gpu0 rim check %q, expected passed", got)
				}
				if _, ok := claims["measurements"].(map[string]any)["gpu1/fwid"]; !ok {
					t.Error("gpu0 claims lack the second GPU's measurements")
				}
				attributes, _ := claims["attributes"].(map[string]any)
				if attributes["arch"] != "HOPPER" {
					t.Errorf("gpu0 arch %v, expected HOPPER", attributes["arch"])
				}

				wantSecret(t, getWithJar(t, ts, jar, "/kbs/v0/resource/"+testSecretPath), key)
			})
		}
	})
}

// wantLastDenial checks that the last denial in st's audit log states
// reason.
func wantLastDenial(t *testing.T, st store.Store, reason string) {
	t.Helper()
	recs, err := st.ListAudit(context.Background(), store.AuditQuery{Action: store.AuditDeny})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("the audit log has no denial")
	}
	if last := recs[len(recs)-1]; !strings.Contains(last.Reason, reason) {
		t.Errorf("denial reason %q does not contain %q", last.Reason, reason)
	}
}
