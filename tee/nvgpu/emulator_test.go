package nvgpu

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

func newEmulator(t testing.TB, gpus int) *Emulator {
	t.Helper()
	e, err := NewEmulator(EmulatorOptions{GPUs: gpus})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// certItems returns certs as collateral items scoped to nvidia-gpu.
func certItems(certs ...*x509.Certificate) *collateral.Set {
	s := &collateral.Set{}
	for _, c := range certs {
		s.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: c.Raw, Certificate: c, TEEs: []string{string(attest.TEENVGPU)}})
	}
	return s
}

// emulatorOptions returns options that verify e's evidence for nonce: its
// roots as trust anchors and its RIMs as collateral.
func emulatorOptions(t testing.TB, e *Emulator, nonce []byte) attest.Options {
	t.Helper()
	rims, err := e.Collateral()
	if err != nil {
		t.Fatal(err)
	}
	return attest.Options{Collateral: rims, TrustAnchors: certItems(e.Roots()...), Nonce: nonce}
}

func emulatorNonce(t testing.TB) []byte {
	t.Helper()
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	return nonce
}

func verifyEvidence(t testing.TB, ev *attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	t.Helper()
	return (&Verifier{}).Verify(context.Background(), *ev, opts)
}

func attestEmulator(t testing.TB, e *Emulator, nonce []byte) *attest.Evidence {
	t.Helper()
	ev, err := e.Attest(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func checkResult(t *testing.T, c *attest.Claims, name string, want attest.CheckResult) {
	t.Helper()
	ch, ok := c.FindCheck(name)
	if !ok {
		t.Errorf("no %s check recorded", name)
		return
	}
	if ch.Result != want {
		t.Errorf("check %s is %s (%s), expected %s", name, ch.Result, ch.Detail, want)
	}
}

func TestEmulatorEvidenceVerifies(t *testing.T) {
	for _, gpus := range []int{1, 3, MaxEmulatedGPUs} {
		t.Run(strconv.Itoa(gpus)+" GPUs", func(t *testing.T) {
			e := newEmulator(t, gpus)
			nonce := emulatorNonce(t)
			ev := attestEmulator(t, e, nonce)
			if !(&Verifier{}).Detect(ev.Data) {
				t.Error("the verifier does not detect the emulated evidence")
			}

			claims, err := verifyEvidence(t, ev, emulatorOptions(t, e, nonce))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			for _, name := range []string{"spdm-signature", "certificate-chain", "fwid", rimCheck, "nonce"} {
				checkResult(t, claims, name, attest.CheckPassed)
			}
			// The emulator issues no OCSP responses.
			checkResult(t, claims, ocspCheck, attest.CheckNotChecked)
			if !claims.Emulated {
				t.Error("claims not marked emulated")
			}
			if claims.TrustAnchor.Kind != attest.AnchorEmulatedRoot {
				t.Errorf("trust anchor kind %s, expected %s", claims.TrustAnchor.Kind, attest.AnchorEmulatedRoot)
			}
			if claims.Product != emulatedChip {
				t.Errorf("product %q, expected %s", claims.Product, emulatedChip)
			}
			if !bytes.Equal(claims.Nonce, nonce) {
				t.Errorf("nonce %x, expected %x", claims.Nonce, nonce)
			}
			if got := claims.Attributes["driver_version"]; got != emulatedDriverVersion {
				t.Errorf("driver_version %v, expected %s", got, emulatedDriverVersion)
			}
			if gpus == 1 {
				// No signature covers the UUID, so it is named as unverified.
				if _, ok := claims.Attributes["uuid"]; ok {
					t.Error("the unsigned GPU UUID is reported as the attribute uuid")
				}
				if got, _ := claims.Attributes["uuid_unverified"].(string); !strings.HasPrefix(got, "GPU-") {
					t.Errorf("uuid_unverified %q, expected the emulated GPU's UUID", got)
				}
			}
			last := "block" + strconv.Itoa(emulatedBlocks)
			if gpus > 1 {
				last = "gpu" + strconv.Itoa(gpus-1) + "/" + last
			}
			if _, ok := claims.Measurements[last]; !ok {
				t.Errorf("no measurement %s in %v", last, claims.Measurements)
			}
			if rims, _ := claims.Attributes["rims"].([]map[string]any); len(rims) != 2*gpus {
				t.Errorf("%d applied RIMs listed, expected %d", len(rims), 2*gpus)
			}

			if d := appraise.Appraise(claims, appraise.Options{}); d.Accepted {
				t.Error("the default appraisal accepted emulated GPU evidence")
			}
			if d := appraise.Appraise(claims, appraise.Options{AllowEmulated: true}); !d.Accepted {
				t.Errorf("the appraisal with emulation allowed rejected: %v", d.Err())
			}
		})
	}
}

func TestEmulatorNonceTooLong(t *testing.T) {
	e := newEmulator(t, 1)
	if _, err := e.Attest(context.Background(), make([]byte, NonceSize+1)); err == nil {
		t.Error("Attest accepted 33 bytes of report data")
	}
}

func TestEmulatorShortNonceZeroPadded(t *testing.T) {
	e := newEmulator(t, 1)
	ev := attestEmulator(t, e, []byte{1, 2, 3})
	want := make([]byte, NonceSize)
	copy(want, []byte{1, 2, 3})
	if _, err := verifyEvidence(t, ev, emulatorOptions(t, e, want)); err != nil {
		t.Errorf("Verify with the zero-padded nonce: %v", err)
	}
}

func TestEmulatorOptionsRejected(t *testing.T) {
	for _, gpus := range []int{-1, MaxEmulatedGPUs + 1} {
		if _, err := NewEmulator(EmulatorOptions{GPUs: gpus}); err == nil {
			t.Errorf("NewEmulator accepted %d GPUs", gpus)
		}
	}
}

// editedEvidence returns e's evidence for nonce with GPU i's report
// changed by edit and, when resign is set, signed again with its leaf key.
func editedEvidence(t *testing.T, e *Emulator, nonce []byte, i int, edit func(report []byte), resign bool) *attest.Evidence {
	t.Helper()
	ev := attestEmulator(t, e, nonce)
	var entries []gpuEntry
	if err := json.Unmarshal(ev.Data, &entries); err != nil {
		t.Fatal(err)
	}
	report, err := hex.DecodeString(entries[i].ReportHex)
	if err != nil {
		t.Fatal(err)
	}
	edit(report)
	if resign {
		signAgain(t, report, e.gpus[i].leafKey)
	}
	entries[i].ReportHex = hex.EncodeToString(report)
	if ev.Data, err = json.Marshal(entries); err != nil {
		t.Fatal(err)
	}
	return ev
}

// signAgain replaces the signature at the end of report with a new one by
// key over the bytes before it.
func signAgain(t *testing.T, report []byte, key *ecdsa.PrivateKey) {
	t.Helper()
	signed := len(report) - SignatureSize
	digest := sha512.Sum384(report[:signed])
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	r.FillBytes(report[signed : signed+SignatureSize/2])
	s.FillBytes(report[signed+SignatureSize/2:])
}

// blockValueOffset returns the offset of the value of measurement block
// index (from 1) in an emulated report.
func blockValueOffset(index int) int {
	const responseHeader = 8 // version, code, param1, param2, NumberOfBlocks, 3-byte record length
	const blockHeader = 4 + 3
	return requestSize + responseHeader + (index-1)*(blockHeader+sha384Size) + blockHeader
}

func TestEmulatorTampering(t *testing.T) {
	e := newEmulator(t, 2)
	other := newEmulator(t, 1)
	nonce := emulatorNonce(t)
	flipBlock := func(index int) func([]byte) {
		return func(report []byte) { report[blockValueOffset(index)] ^= 0x01 }
	}

	tests := []struct {
		name     string
		evidence func(t *testing.T) *attest.Evidence
		opts     func(t *testing.T) attest.Options
		kind     error
		// failed names a check that must be recorded as failed.
		failed string
	}{
		{
			name:     "driver block changed and signed again",
			evidence: func(t *testing.T) *attest.Evidence { return editedEvidence(t, e, nonce, 1, flipBlock(1), true) },
			opts:     func(t *testing.T) attest.Options { return emulatorOptions(t, e, nonce) },
			kind:     attest.ErrAppraisal, failed: rimCheck,
		},
		{
			name: "VBIOS block changed and signed again",
			evidence: func(t *testing.T) *attest.Evidence {
				return editedEvidence(t, e, nonce, 0, flipBlock(emulatedBlocks), true)
			},
			opts: func(t *testing.T) attest.Options { return emulatorOptions(t, e, nonce) },
			kind: attest.ErrAppraisal, failed: rimCheck,
		},
		{
			name:     "block changed without a new signature",
			evidence: func(t *testing.T) *attest.Evidence { return editedEvidence(t, e, nonce, 0, flipBlock(2), false) },
			opts:     func(t *testing.T) attest.Options { return emulatorOptions(t, e, nonce) },
			kind:     attest.ErrSignature,
		},
		{
			name:     "other nonce expected",
			evidence: func(t *testing.T) *attest.Evidence { return attestEmulator(t, e, nonce) },
			opts:     func(t *testing.T) attest.Options { return emulatorOptions(t, e, emulatorNonce(t)) },
			kind:     attest.ErrBinding, failed: "nonce",
		},
		{
			name:     "no trust anchor, so the pinned NVIDIA root",
			evidence: func(t *testing.T) *attest.Evidence { return attestEmulator(t, e, nonce) },
			opts: func(t *testing.T) attest.Options {
				o := emulatorOptions(t, e, nonce)
				o.TrustAnchors = nil
				return o
			},
			kind: attest.ErrChain,
		},
		{
			name:     "roots of another emulator",
			evidence: func(t *testing.T) *attest.Evidence { return attestEmulator(t, e, nonce) },
			opts: func(t *testing.T) attest.Options {
				o := emulatorOptions(t, e, nonce)
				o.TrustAnchors = certItems(other.Roots()...)
				return o
			},
			kind: attest.ErrChain,
		},
		{
			name:     "roots among the collateral, not trust anchors",
			evidence: func(t *testing.T) *attest.Evidence { return attestEmulator(t, e, nonce) },
			opts: func(t *testing.T) attest.Options {
				o := emulatorOptions(t, e, nonce)
				set := o.Collateral.(*collateral.Set)
				set.Merge(certItems(e.Roots()...))
				o.TrustAnchors = nil
				return o
			},
			kind: attest.ErrChain,
		},
		{
			name:     "RIM root not passed",
			evidence: func(t *testing.T) *attest.Evidence { return attestEmulator(t, e, nonce) },
			opts: func(t *testing.T) attest.Options {
				o := emulatorOptions(t, e, nonce)
				o.TrustAnchors = certItems(e.root)
				return o
			},
			kind: attest.ErrChain, failed: rimCheck,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := verifyEvidence(t, tc.evidence(t), tc.opts(t))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, expected kind %v", err, tc.kind)
			}
			if tc.failed != "" {
				if claims == nil {
					t.Fatal("no claims returned with the error")
				}
				checkResult(t, claims, tc.failed, attest.CheckFailed)
			}
		})
	}
}

func TestEmulatorSaveLoad(t *testing.T) {
	e := newEmulator(t, 2)
	dir := filepath.Join(t.TempDir(), "state")
	if err := e.Save(dir); err != nil {
		t.Fatalf("Save: %v", err)
	}
	for _, s := range e.storedCerts() {
		info, err := os.Stat(filepath.Join(dir, keyFile(s.file)))
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, expected 600", keyFile(s.file), mode)
		}
	}

	loaded, err := LoadEmulator(dir)
	if err != nil {
		t.Fatalf("LoadEmulator: %v", err)
	}
	if loaded.GPUCount() != 2 {
		t.Fatalf("loaded %d GPUs, expected 2", loaded.GPUCount())
	}
	if loaded.gpus[1].uuid != e.gpus[1].uuid {
		t.Errorf("loaded GPU 1 UUID %q, expected %q", loaded.gpus[1].uuid, e.gpus[1].uuid)
	}
	// The reloaded emulator's evidence and RIMs verify under the original
	// roots.
	nonce := emulatorNonce(t)
	opts := emulatorOptions(t, loaded, nonce)
	opts.TrustAnchors = certItems(e.Roots()...)
	claims, err := verifyEvidence(t, attestEmulator(t, loaded, nonce), opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	checkResult(t, claims, rimCheck, attest.CheckPassed)
}

func TestLoadEmulatorMismatchedKey(t *testing.T) {
	a, b := newEmulator(t, 1), newEmulator(t, 1)
	dirA, dirB := t.TempDir(), t.TempDir()
	if err := a.Save(dirA); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(dirB); err != nil {
		t.Fatal(err)
	}
	name := keyFile("gpu0-leaf.pem")
	key, err := os.ReadFile(filepath.Join(dirB, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirA, name), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEmulator(dirA); err == nil {
		t.Error("LoadEmulator accepted a key that does not match its certificate")
	}
}

// LoadEmulator rejects a truncated or inconsistent file with an error that
// names it.
func TestLoadEmulatorMalformedFiles(t *testing.T) {
	e := newEmulator(t, 1)
	tests := []struct {
		name string
		file string
		data string
	}{
		{"truncated state", fileEmulator, `{"gpus": 1, "uu`},
		{"too many GPUs", fileEmulator, `{"gpus": 99, "uuids": []}`},
		{"UUID count", fileEmulator, `{"gpus": 2, "uuids": ["GPU-a"]}`},
		{"truncated certificate", "gpu0-leaf.pem", "-----BEGIN CERTIFICATE-----\nMIIB"},
		{"invalid certificate", fileRIMRoot, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		{"truncated key", keyFile(fileRoot), "-----BEGIN PRIVATE KEY-----\nMIG"},
		{"empty key", keyFile(fileRIMSigner), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := e.Save(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadEmulator(dir)
			if err == nil {
				t.Fatal("LoadEmulator accepted the malformed file")
			}
			if !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %v, expected one naming %s", err, tt.file)
			}
		})
	}
}

func TestEmulateToDirLayout(t *testing.T) {
	dir := t.TempDir()
	nonce := emulatorNonce(t)
	p, err := EmulateToDir(context.Background(), EmulatorOptions{GPUs: 2}, nonce, dir)
	if err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(p.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	rims, err := collateral.LoadPath(p.Collateral)
	if err != nil {
		t.Fatal(err)
	}
	anchors, err := collateral.LoadPath(p.Root)
	if err != nil {
		t.Fatal(err)
	}
	anchors.ScopeTo([]string{string(attest.TEENVGPU)})
	if n := len(anchors.SelfSigned()); n != 2 {
		t.Errorf("%s contains %d roots, expected 2", p.Root, n)
	}
	opts := attest.Options{Collateral: rims, TrustAnchors: anchors, Nonce: nonce}
	claims, err := verifyEvidence(t, &attest.Evidence{Data: data}, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	checkResult(t, claims, rimCheck, attest.CheckPassed)

	if _, err := LoadEmulator(p.State); err != nil {
		t.Errorf("LoadEmulator(%s): %v", p.State, err)
	}
	if _, err := EmulateToDir(context.Background(), EmulatorOptions{}, nonce[:16], t.TempDir()); err == nil {
		t.Error("EmulateToDir accepted a 16-byte nonce")
	}
}
