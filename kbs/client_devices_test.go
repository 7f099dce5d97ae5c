package kbs

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// reportDataAttester returns sample evidence and keeps the report data it
// was given.
type reportDataAttester struct {
	name       string
	reportData []byte
}

func (a *reportDataAttester) Name() string { return a.name }

func (a *reportDataAttester) Attest(_ context.Context, reportData []byte) (*attest.Evidence, error) {
	a.reportData = append([]byte(nil), reportData...)
	return &attest.Evidence{Format: SampleFormat, Data: []byte(`{"svn":"1","report_data":""}`)}, nil
}

// The client sends each device's evidence in additional_evidence under its
// KBS tee name. The GPUs' SPDM nonce is the first 32 bytes of the device
// runtime-data digest, and the primary evidence binds the primary digest
// over the exact additional_evidence string.
func TestClientDeviceEvidenceBinding(t *testing.T) {
	gpu, err := nvgpu.NewEmulator(nvgpu.EmulatorOptions{GPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	handler, bodies := recordingKBSHandler()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	primary := &reportDataAttester{name: "sample"}
	c := &Client{URL: srv.URL, Attester: primary, Devices: []attest.Attester{gpu}}
	if _, err := c.Attest(context.Background()); err != nil {
		t.Fatalf("Attest: %v", err)
	}

	sent := bodies()
	if len(sent) != 1 {
		t.Fatalf("%d attestations sent, expected 1", len(sent))
	}
	att, err := ParseAttestation(sent[0])
	if err != nil {
		t.Fatal(err)
	}
	nonce, key := att.RuntimeData.Nonce, att.RuntimeData.TEEPubKey
	additional := att.TEEEvidence.AdditionalEvidence
	if !strings.HasPrefix(additional, `{"nvidia":{"format":"nvidia-gpu","data":"`) {
		t.Errorf("additional_evidence %.80q..., expected an object with the nvidia evidence envelope", additional)
	}
	wantPrimary, err := PrimaryDigest(DefaultHash, nonce, key, additional)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(primary.reportData, wantPrimary) {
		t.Errorf("primary report data %x, expected the primary digest %x", primary.reportData, wantPrimary)
	}

	devices, err := parseAdditionalEvidence(additional)
	if err != nil {
		t.Fatalf("parse additional_evidence %s: %v", additional, err)
	}
	if len(devices) != 1 {
		t.Fatalf("additional_evidence parses to %d devices, expected 1: %+v", len(devices), devices)
	}
	if devices[0].tee != "nvidia" {
		t.Fatalf("additional_evidence device tee %q, expected nvidia", devices[0].tee)
	}
	ev, err := DecodeEvidence("nvidia", devices[0].evidence)
	if err != nil {
		t.Fatal(err)
	}
	deviceDigest, err := DeviceDigest(DefaultHash, nonce, key)
	if err != nil {
		t.Fatal(err)
	}
	rims, err := gpu.Collateral()
	if err != nil {
		t.Fatal(err)
	}
	anchors := &collateral.Set{}
	for _, root := range gpu.Roots() {
		anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: root.Raw, Certificate: root})
	}
	opts := attest.Options{Collateral: rims, TrustAnchors: anchors, Nonce: deviceDigest[:32]}
	claims, err := (&nvgpu.Verifier{}).Verify(context.Background(), ev, opts)
	if err != nil {
		t.Fatalf("the GPU evidence does not verify with the device digest's first 32 bytes as nonce: %v", err)
	}
	if ch, _ := claims.FindCheck("nonce"); ch.Result != attest.CheckPassed {
		t.Errorf("nonce check %s, expected passed", ch.Result)
	}
}

func TestClientDeviceErrors(t *testing.T) {
	gpu, err := nvgpu.NewEmulator(nvgpu.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		devices  []attest.Attester
		contains string
	}{
		{"device without KBS tee name", []attest.Attester{&reportDataAttester{name: "emulated-gpu"}}, "no KBS tee name"},
		{"two devices of one tee", []attest.Attester{gpu, gpu}, "two device attesters send nvidia evidence"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler, bodies := recordingKBSHandler()
			srv := httptest.NewServer(handler)
			t.Cleanup(srv.Close)
			c := &Client{URL: srv.URL, Attester: &reportDataAttester{name: "sample"}, Devices: tc.devices}
			_, err := c.Attest(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("Attest error %v, expected one containing %q", err, tc.contains)
			}
			if n := len(bodies()); n != 0 {
				t.Errorf("%d attestations sent after the error, expected none", n)
			}
		})
	}
}

// DeviceTEE drops the emulated- prefix, names nvidia-gpu evidence nvidia
// and rejects a name that is no KBS tee.
func TestDeviceTEE(t *testing.T) {
	tests := []struct {
		attester string
		want     string
	}{
		{"emulated-nvidia-gpu", "nvidia"},
		{"nvidia-gpu", "nvidia"},
		{"sampledevice", "sampledevice"},
	}
	for _, tc := range tests {
		got, err := DeviceTEE(&reportDataAttester{name: tc.attester})
		if err != nil {
			t.Errorf("DeviceTEE(%s): %v", tc.attester, err)
		}
		if got != tc.want {
			t.Errorf("DeviceTEE(%s) = %q, expected %q", tc.attester, got, tc.want)
		}
	}
	if _, err := DeviceTEE(&reportDataAttester{name: "gpu"}); err == nil {
		t.Error("DeviceTEE accepted gpu, which is no KBS tee")
	}
}
