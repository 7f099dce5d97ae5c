package composite

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/emudir"
	"github.com/cloister-dev/cloister/tee/dcap"
)

// resignedAtVMPL returns report with its VMPL (offset 0x30) set to vmpl
// and signed again with the VCEK key that e saved, because the emulator
// signs only VMPL 0 reports. The signature covers bytes 0 to 0x2A0 and is
// stored as little-endian R and S of 72 bytes each.
func resignedAtVMPL(t *testing.T, e interface{ Save(string) error }, report []byte, vmpl uint32) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "snp")
	if err := e.Save(dir); err != nil {
		t.Fatal(err)
	}
	_, key, err := emudir.ReadCertAndKey[*ecdsa.PrivateKey](filepath.Join(dir, "endorsement.pem"), filepath.Join(dir, "endorsement-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(report[0x30:], vmpl)
	digest := sha512.Sum384(report[:0x2A0])
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	putLittleEndian(report[0x2A0:0x2E8], r)
	putLittleEndian(report[0x2E8:0x330], s)
	return report
}

func putLittleEndian(dst []byte, v *big.Int) {
	v.FillBytes(dst)
	for i, j := 0, len(dst)-1; i < j; i, j = i+1, j-1 {
		dst[i], dst[j] = dst[j], dst[i]
	}
}

// expectVerdict appraises claims with ao and requires acceptance when
// wantText is empty, and otherwise a rejection whose error contains it.
func expectVerdict(t *testing.T, claims *attest.Claims, ao appraise.Options, wantText string) {
	t.Helper()
	ao.AllowEmulated = true
	d := appraise.Appraise(claims, ao)
	if wantText == "" {
		if !d.Accepted {
			t.Errorf("rejected: %v", d.Err())
		}
		return
	}
	if d.Accepted {
		t.Fatalf("accepted, want a rejection containing %q", wantText)
	}
	if err := d.Err(); !strings.Contains(err.Error(), wantText) {
		t.Errorf("error %q does not contain %q", err, wantText)
	}
}

// The maximum VMPL applies to the SEV-SNP CPU report of composite evidence.
func TestCompositeSNPMaxVMPL(t *testing.T) {
	g := acceptedGPUCases(t)[0]
	e := emulator(t, false)
	maximum := func(v uint32) *uint32 { return &v }
	for _, vmpl := range []uint32{0, 2} {
		data := build(t, resignedAtVMPL(t, e, cpuReport(t, e, g.nonce), vmpl), g.report)
		claims, err := verify(data, options(e, g))
		if err != nil {
			t.Fatalf("VMPL %d: Verify: %v", vmpl, err)
		}
		if got := claims.Attributes["vmpl"]; got != vmpl {
			t.Errorf("vmpl attribute %v, want %d", got, vmpl)
		}
		expectVerdict(t, claims, appraise.Options{MaxVMPL: maximum(vmpl)}, "")
		expectVerdict(t, claims, appraise.Options{}, "")
		if vmpl > 0 {
			expectVerdict(t, claims, appraise.Options{MaxVMPL: maximum(vmpl - 1)}, "the SEV-SNP report is from VMPL 2, above the maximum VMPL 1")
		}
	}
}

// The minimum TCB evaluation data number applies to the TDX CPU quote of
// composite evidence. The emulated TCB Info and QE Identity have the
// number 17.
func TestCompositeTDXMinTCBEvaluationDataNumber(t *testing.T) {
	g := acceptedGPUCases(t)[0]
	e, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := e.Attest(context.Background(), g.nonce)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Marshal(&Evidence{CPU: *ev, GPUs: [][]byte{g.report}})
	if err != nil {
		t.Fatal(err)
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})

	withCollateral := &collateral.Set{}
	withCollateral.Merge(e.Collateral())
	withCollateral.Merge(g.collateral)
	claims, err := verify(data, attest.Options{Collateral: withCollateral, TrustAnchors: anchors})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := claims.Attributes["cpu_tee"]; got != string(attest.TEETDX) {
		t.Fatalf("cpu_tee %v, want tdx", got)
	}
	expectVerdict(t, claims, appraise.Options{MinTCBEvaluationDataNumber: 17}, "")
	expectVerdict(t, claims, appraise.Options{MinTCBEvaluationDataNumber: 18},
		"TCB evaluation data number 17 (the lower of the TCB Info's and the QE Identity's) is below the minimum 18")

	// Without TCB Info and QE Identity the number is unknown.
	claims, err = verify(data, attest.Options{Collateral: g.collateral, TrustAnchors: anchors})
	if claims == nil {
		t.Fatalf("Verify without TDX collateral returned no claims: %v", err)
	}
	expectVerdict(t, claims, appraise.Options{MinTCBEvaluationDataNumber: 17, AllowUndeterminedTCB: true},
		"the composite claims have no TCB evaluation data number, because no TCB Info or QE Identity was verified")
}
