package azurevtpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/emudir"
	"github.com/cloister-dev/cloister/tee/snp"
)

// emulatedVM is an Azure SEV-SNP confidential VM built from the snp
// emulator: its paravisor's vTPM AK, and the development VCEK that signs
// its hardware reports.
type emulatedVM struct {
	snp     *snp.Emulator
	vcekKey *ecdsa.PrivateKey
	ak      *rsa.PrivateKey
}

var (
	emulatedOnce sync.Once
	emulated     *emulatedVM
	emulatedErr  error
)

// newEmulatedVM returns the emulated VM shared by the tests of this file,
// because the emulator generates RSA-4096 development keys.
func newEmulatedVM(t *testing.T) *emulatedVM {
	t.Helper()
	emulatedOnce.Do(func() {
		e, err := snp.NewEmulator(snp.EmulatorOptions{})
		if err != nil {
			emulatedErr = err
			return
		}
		// The emulator signs only VMPL 0 reports. Its saved VCEK key lets
		// the tests sign reports with other fields.
		dir := filepath.Join(t.TempDir(), "snp")
		if err := e.Save(dir); err != nil {
			emulatedErr = err
			return
		}
		_, key, err := emudir.ReadCertAndKey[*ecdsa.PrivateKey](filepath.Join(dir, "endorsement.pem"), filepath.Join(dir, "endorsement-key.pem"))
		if err != nil {
			emulatedErr = err
			return
		}
		ak, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			emulatedErr = err
			return
		}
		emulated = &emulatedVM{snp: e, vcekKey: key, ak: ak}
	})
	if emulatedErr != nil {
		t.Fatal(emulatedErr)
	}
	return emulated
}

// options trusts the emulator's development ARK, as a caller that tests
// with emulated evidence passes it.
func (vm *emulatedVM) options(nonce []byte) attest.Options {
	anchors := &collateral.Set{}
	root := vm.snp.Root()
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "emulator", Raw: root.Raw, Certificate: root})
	return attest.Options{At: time.Now(), Collateral: vm.snp.Collateral(), TrustAnchors: anchors, Nonce: nonce}
}

// emulatedEvidence describes evidence that emulatedVM.evidence builds. The
// zero value is what the paravisor of a healthy VM produces.
type emulatedEvidence struct {
	// vmpl is the VMPL of the SEV-SNP report.
	vmpl uint32
	// runtime replaces the runtime data JSON when not nil.
	runtime []byte
	// reportData replaces the report data, SHA-256 of the runtime data,
	// when not nil.
	reportData []byte
	nonce      []byte
}

// runtimeData returns the runtime data JSON that names key as HCLAkPub.
func runtimeData(key *rsa.PublicKey) []byte {
	enc := base64.RawURLEncoding
	e := big.NewInt(int64(key.E)).Bytes()
	return []byte(`{"keys":[{"kid":"HCLAkPub","key_ops":["sign"],"kty":"RSA","e":"` + enc.EncodeToString(e) + `","n":"` + enc.EncodeToString(key.N.Bytes()) + `"}],` +
		`"vm-configuration":{"secure-boot":true,"tpm-enabled":true},"user-data":"` + hex.EncodeToString(make([]byte, userDataSize)) + `"}`)
}

// evidence returns the evidence JSON (version 1) of the VM as spec
// describes it.
func (vm *emulatedVM) evidence(t *testing.T, spec emulatedEvidence) []byte {
	t.Helper()
	runtime := spec.runtime
	if runtime == nil {
		runtime = runtimeData(&vm.ak.PublicKey)
	}
	reportData := spec.reportData
	if reportData == nil {
		sum := sha256.Sum256(runtime)
		reportData = sum[:]
	}

	hcl := buildHCL(ReportTypeSNP, 1, runtime)
	copy(hcl[hclHeaderSize:], vm.report(t, reportData, spec.vmpl))

	nonce := spec.nonce
	if nonce == nil {
		nonce = []byte("emulated nonce")
	}
	msg, pcrs := vtpmQuote(nonce)
	digest := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, vm.ak, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	hexPCRs := make([]string, len(pcrs))
	for i, v := range pcrs {
		hexPCRs[i] = hex.EncodeToString(v)
	}

	vcek := vm.snp.Collateral().OfKind(collateral.KindCertificate)[0].Raw
	doc := map[string]any{
		"version":    1,
		"hcl_report": base64.RawURLEncoding.EncodeToString(hcl),
		"vcek":       string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vcek})),
		"tpm_quote": map[string]any{
			"message":   hex.EncodeToString(msg),
			"signature": hex.EncodeToString(sig),
			"pcrs":      hexPCRs,
		},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// report returns an SEV-SNP report of the emulated VM with reportData and
// vmpl, signed by the development VCEK.
func (vm *emulatedVM) report(t *testing.T, reportData []byte, vmpl uint32) []byte {
	t.Helper()
	ev, err := vm.snp.Attest(context.Background(), reportData)
	if err != nil {
		t.Fatal(err)
	}
	report := ev.Data
	if vmpl == 0 {
		return report
	}

	// VMPL is at offset 0x30. The signature covers bytes 0 to 0x2A0 and is
	// stored as little-endian R and S of 72 bytes each.
	binary.LittleEndian.PutUint32(report[0x30:], vmpl)
	digest := sha512.Sum384(report[:0x2A0])
	r, s, err := ecdsa.Sign(rand.Reader, vm.vcekKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	putLittleEndian(report[0x2A0:0x2E8], r)
	putLittleEndian(report[0x2E8:0x330], s)
	return report
}

// reportDataWithTail returns the SHA-256 of runtime followed by 32 bytes
// that are not all zero.
func reportDataWithTail(runtime []byte) []byte {
	sum := sha256.Sum256(runtime)
	out := make([]byte, 64)
	copy(out, sum[:])
	out[63] = 1
	return out
}

func putLittleEndian(dst []byte, v *big.Int) {
	v.FillBytes(dst)
	for i, j := 0, len(dst)-1; i < j; i, j = i+1, j-1 {
		dst[i], dst[j] = dst[j], dst[i]
	}
}

// vtpmQuote returns a TPMS_ATTEST quoting 24 SHA-256 PCRs with nonce, and
// the PCR values.
func vtpmQuote(nonce []byte) ([]byte, [][]byte) {
	pcrs := make([][]byte, 24)
	digest := sha256.New()
	for i := range pcrs {
		sum := sha256.Sum256([]byte{byte(i)})
		pcrs[i] = sum[:]
		digest.Write(pcrs[i])
	}
	body := tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: []byte{0, 0x0b, 1, 2, 3}},
		ExtraData:       tpm2.TPM2BData{Buffer: nonce},
		ClockInfo:       tpm2.TPMSClockInfo{Clock: 1000, ResetCount: 1, Safe: true},
		FirmwareVersion: 0x2024010100010203,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{0xff, 0xff, 0xff}}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: digest.Sum(nil)},
		}),
	}
	return tpm2.Marshal(&body), pcrs
}

func TestVerifyEmulatedVM(t *testing.T) {
	vm := newEmulatedVM(t)
	nonce := []byte("emulated nonce")
	c, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: vm.evidence(t, emulatedEvidence{})}, vm.options(nonce))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !c.Emulated {
		t.Error("claims of an emulated VM are not marked emulated")
	}
	if string(c.Nonce) != string(nonce) {
		t.Errorf("nonce = %q, expected %q", c.Nonce, nonce)
	}
	if ch, _ := c.FindCheck(CheckReportData); ch.Result != attest.CheckPassed {
		t.Errorf("check %s = %q, expected passed", CheckReportData, ch.Result)
	}
}

func TestVerifyEmulatedVMRejected(t *testing.T) {
	vm := newEmulatedVM(t)
	tests := []struct {
		name      string
		spec      emulatedEvidence
		wantField string
		wantText  string
		wantCheck string
	}{
		{
			// A guest at VMPL 1 to 3 can request its own report with
			// report data it chooses, so only the paravisor's VMPL 0
			// report vouches for the runtime data.
			name:      "report from VMPL 2",
			spec:      emulatedEvidence{vmpl: 2},
			wantField: "hcl_report.VMPL",
			wantText:  "VMPL 2",
			wantCheck: CheckVMPL,
		},
		{
			// The paravisor zero-pads the digest of the runtime data to
			// the 64 bytes of REPORT_DATA.
			name:      "report data not zero after the digest",
			spec:      emulatedEvidence{reportData: reportDataWithTail(runtimeData(&vm.ak.PublicKey))},
			wantField: "report data",
			wantText:  "nonzero bytes after",
			wantCheck: CheckReportData,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: vm.evidence(t, tt.spec)}, vm.options(nil))
			if err == nil {
				t.Fatal("Verify accepted the evidence")
			}
			var e *attest.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *attest.Error", err)
			}
			if !errors.Is(err, attest.ErrBinding) {
				t.Errorf("error kind = %s, expected binding", attest.KindName(err))
			}
			if e.Field != tt.wantField {
				t.Errorf("error field = %q, expected %q", e.Field, tt.wantField)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
			if e.Fix == "" {
				t.Error("error names no fix")
			}
			if c == nil {
				t.Fatal("no claims, although the hardware report verified")
			}
			if ch, _ := c.FindCheck(tt.wantCheck); ch.Result != attest.CheckFailed {
				t.Errorf("check %s = %q, expected failed", tt.wantCheck, ch.Result)
			}
			if _, ok := c.FindCheck("quote-signature"); ok {
				t.Error("the vTPM quote was checked, although the AK is not vouched for")
			}
		})
	}
}
