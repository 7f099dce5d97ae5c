package nvgpu

import (
	"crypto/elliptic"
	"crypto/sha512"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/benchcpu"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// BenchmarkVerify measures full verifications of a real Hopper report with
// a warm chain cache, and the bare ECDSA P-384 verification of a SHA-384
// digest as the floor, in one function so that -count interleaves them on
// a busy machine. embedded-root passes the device chain without its root
// and trusts the embedded NVIDIA root. collateral-dir passes the case's
// files as the CLI does. They hold two copies of the root, and
// attest.Roots checks the self-signature of each.
func BenchmarkVerify(b *testing.B) {
	c, ok := corpus.FirstAccepted(b, "nvidia-gpu", func(c corpus.Case) bool { return c.Expect.OtherInputs["cert_chain"] != "" })
	if !ok {
		b.Fatal("no accepted NVIDIA GPU case with a cert_chain file in the corpus")
	}
	data := c.EvidenceBytes(b)
	pemChain, err := os.ReadFile(filepath.Join(c.Dir, c.Expect.OtherInputs["cert_chain"]))
	if err != nil {
		b.Fatal(err)
	}
	chain, err := parsePEMChain(pemChain, "cert_chain")
	if err != nil {
		b.Fatal(err)
	}
	withoutRoot := &collateral.Set{}
	for _, cert := range nonRoots(chain) {
		withoutRoot.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: cert.Raw, Certificate: cert})
	}
	configs := []struct {
		name string
		opts attest.Options
	}{
		{"embedded-root", attest.Options{At: c.Time(b), Collateral: withoutRoot}},
		{"collateral-dir", attest.Options{At: c.Time(b), Collateral: c.Collateral(b)}},
	}
	for _, cfg := range configs {
		b.Run(cfg.name, func(b *testing.B) {
			benchcpu.Verify(b, &Verifier{}, attest.Evidence{Data: data}, cfg.opts)
		})
	}
	b.Run("bare-p384", benchmarkP384)
}

func benchmarkP384(b *testing.B) {
	digest := sha512.Sum384([]byte("SPDM transcript"))
	benchcpu.BareECDSA(b, elliptic.P384(), digest[:])
}
