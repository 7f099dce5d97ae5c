package nvgpu

import (
	"context"
	"crypto/elliptic"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/benchcpu"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/internal/fifocache"
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

// BenchmarkRIMs measures full verifications of a generated GPU report with
// generated RIMs, with an empty RIM cache (cold) and with a filled one
// (warm), alternating on one thread (benchcpu.Alternate). The chain cache
// is warm on both sides, so the difference is the RIMs' XML parsing,
// XML-DSig checks and chains. pair passes the GPU's driver and VBIOS
// RIMs. directory adds six RIMs of other driver versions, two of them with
// an expired signer, as a collateral directory of many releases does.
func BenchmarkRIMs(b *testing.B) {
	g := newTestGPU(b, testFWID(0xf1), nil)
	s := newRIMSigner(b, testTime.Add(time.Hour))
	expired := s.withLeaf(b, 14, testTime.Add(-time.Minute))
	driver, vbios := matchingRIMs()
	pair := map[string][]byte{"driver.swidtag": s.sign(b, driver.xml(), true), "vbios.swidtag": s.sign(b, vbios.xml(), true)}
	directory := map[string][]byte{}
	for name, data := range pair {
		directory[name] = data
	}
	for i := range 6 {
		other := driver
		other.version = fmt.Sprintf("535.104.%02d", i)
		signer := s
		if i < 2 {
			signer = expired
		}
		directory["driver-"+other.version+".swidtag"] = signer.sign(b, other.xml(), true)
	}
	evidence := attest.Evidence{Data: []byte(hex.EncodeToString(g.build(b, g.parts(testNonce(7)))))}

	for _, cfg := range []struct {
		name  string
		files map[string][]byte
	}{{"pair", pair}, {"directory", directory}} {
		b.Run(cfg.name, func(b *testing.B) {
			opts := rimOptions(b, g, s, cfg.files)
			cold, warm := &Verifier{}, &Verifier{}
			verify := func(v *Verifier) {
				claims, err := v.Verify(context.Background(), evidence, opts)
				if err != nil {
					b.Fatal(err)
				}
				if ch, _ := claims.FindCheck(rimCheck); ch.Result != attest.CheckPassed {
					b.Fatalf("rim check %+v, expected passed", ch)
				}
			}
			verify(cold)
			verify(warm)
			benchcpu.Alternate(b, benchcpu.Metrics{Measured: "cold-cpu-ns/op", Baseline: "warm-cpu-ns/op", Ratio: "cold/warm"},
				func() {
					cold.rims.clear()
					verify(cold)
				},
				func() { verify(warm) })
		})
	}
}

// clear empties the cache.
func (c *rimCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = fifocache.Cache[*rimVerification]{}
}
