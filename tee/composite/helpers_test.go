package composite

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
	_ "github.com/cloister-dev/cloister/tee/nvgpu"
	"github.com/cloister-dev/cloister/tee/snp"
)

// gpuCase is an accepted real GPU case: its report text, its certificate
// chain file, its collateral and its nonce, which the test cannot choose.
type gpuCase struct {
	report     []byte
	chain      []byte
	collateral *collateral.Set
	nonce      []byte
	fwid       string
}

// acceptedGPUCases returns the accepted nvidia-gpu corpus cases.
func acceptedGPUCases(t testing.TB) []gpuCase {
	t.Helper()
	var out []gpuCase
	for _, c := range corpus.Cases(t, string(attest.TEENVGPU)) {
		if c.Negative() || c.Expect.Nonce == nil {
			continue
		}
		nonce, err := hex.DecodeString(*c.Expect.Nonce)
		if err != nil {
			t.Fatalf("%s: nonce: %v", c.Name, err)
		}
		chain, err := os.ReadFile(filepath.Join(c.Dir, c.Expect.OtherInputs["cert_chain"]))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		out = append(out, gpuCase{
			report:     []byte(strings.TrimSpace(string(c.EvidenceBytes(t)))),
			chain:      chain,
			collateral: c.Collateral(t),
			nonce:      nonce,
			fwid:       c.Expect.Measurements["fwid"],
		})
	}
	if len(out) == 0 {
		t.Skip("the corpus has no accepted nvidia-gpu case with a nonce")
	}
	return out
}

var (
	emulatorsMu sync.Mutex
	emulators   = map[bool]*snp.Emulator{}
)

// emulator returns an emulated SEV-SNP guest shared by the tests, with the
// DEBUG policy bit set when debug is true.
func emulator(t testing.TB, debug bool) *snp.Emulator {
	t.Helper()
	emulatorsMu.Lock()
	defer emulatorsMu.Unlock()
	if e, ok := emulators[debug]; ok {
		return e
	}
	e, err := snp.NewEmulator(snp.EmulatorOptions{Debug: debug})
	if err != nil {
		t.Fatalf("NewEmulator: %v", err)
	}
	emulators[debug] = e
	return e
}

// cpuReport returns an emulated SEV-SNP report whose REPORT_DATA starts
// with reportData.
func cpuReport(t testing.TB, e *snp.Emulator, reportData []byte) []byte {
	t.Helper()
	ev, err := e.Attest(context.Background(), reportData)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	return ev.Data
}

// build encodes composite evidence from a CPU report and GPU documents.
func build(t testing.TB, cpu []byte, gpus ...[]byte) []byte {
	t.Helper()
	data, err := Marshal(&Evidence{CPU: attest.Evidence{Format: "snp", Data: cpu}, GPUs: gpus})
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return data
}

// options returns verification options holding the emulator's collateral
// and root and the GPU case's collateral, at the current time: the GPU
// certificates are valid until 9999 and the emulator's from an hour ago.
func options(e *snp.Emulator, gpus ...gpuCase) attest.Options {
	set := &collateral.Set{}
	set.Merge(e.Collateral())
	for _, g := range gpus {
		set.Merge(g.collateral)
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})
	return attest.Options{Collateral: set, TrustAnchors: anchors}
}

// verify runs the composite verifier.
func verify(data []byte, opts attest.Options) (*attest.Claims, error) {
	return (&Verifier{}).Verify(context.Background(), attest.Evidence{Format: string(TEE), Data: data}, opts)
}
