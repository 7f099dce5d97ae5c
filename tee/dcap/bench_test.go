package dcap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/benchcpu"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/internal/pcsdoc"
)

// benchCase returns the first corpus case that verifies without error: a
// real TDX quote with complete collateral.
func benchCase(b *testing.B) (attest.Evidence, attest.Options) {
	b.Helper()
	c, ok := corpus.FirstAccepted(b, "tdx", nil)
	if !ok {
		b.Skip("no accepted TDX case in the corpus")
	}
	return attest.Evidence{Format: "dcap", Data: c.EvidenceBytes(b)}, c.Options(b)
}

// quoteKeys parses the quote of ev and returns it with the PCK public key
// that signs its QE report and the attestation key that signs the quote.
func quoteKeys(b *testing.B, ev attest.Evidence) (*Quote, *ecdsa.PublicKey, *ecdsa.PublicKey) {
	b.Helper()
	q, err := ParseQuote(ev.Data)
	if err != nil {
		b.Fatal(err)
	}
	certs, err := parsePEMChain(q.PCKChainPEM)
	if err != nil {
		b.Fatal(err)
	}
	pck := certs[0].PublicKey.(*ecdsa.PublicKey)
	if pck.Curve != elliptic.P256() {
		b.Fatalf("PCK key on %s, want P-256", pck.Curve.Params().Name)
	}
	ak, err := parseRawP256Key(q.AttestationKey)
	if err != nil {
		b.Fatal(err)
	}
	return q, pck, ak
}

// BenchmarkVerifyWarm measures a full quote verification with warm chain,
// CRL and collateral signature caches: what remains is parsing the quote
// and the two ECDSA verifications that differ per quote.
func BenchmarkVerifyWarm(b *testing.B) {
	ev, opts := benchCase(b)
	v := NewVerifier()
	if _, err := v.Verify(context.Background(), ev, opts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), ev, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareECDSA measures the floor: the QE report signature and the
// quote signature of the same quote, verified with keys parsed beforehand.
func BenchmarkBareECDSA(b *testing.B) {
	ev, _ := benchCase(b)
	q, pck, ak := quoteKeys(b, ev)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !pcsdoc.VerifyRawECDSA(pck, q.QEReport, q.QEReportSignature) || !pcsdoc.VerifyRawECDSA(ak, q.SignedData, q.Signature) {
			b.Fatal("signature did not verify")
		}
	}
}

// BenchmarkVerifyRatio alternates a warm verification and the two bare
// ECDSA verifications in every iteration and reports their ratio. Each side
// is timed in CPU time of the benchmark's locked OS thread, so that other
// processes competing for the machine's cores do not skew the ratio.
// Garbage collection that runs on other threads is not counted.
func BenchmarkVerifyRatio(b *testing.B) {
	ev, opts := benchCase(b)
	v := NewVerifier()
	if _, err := v.Verify(context.Background(), ev, opts); err != nil {
		b.Fatal(err)
	}
	q, pck, ak := quoteKeys(b, ev)

	metrics := benchcpu.Metrics{Measured: "verify-cpu-ns/op", Baseline: "bare-cpu-ns/op", Ratio: "ratio"}
	benchcpu.Alternate(b, metrics, func() {
		if _, err := v.Verify(context.Background(), ev, opts); err != nil {
			b.Fatal(err)
		}
	}, func() {
		if !pcsdoc.VerifyRawECDSA(pck, q.QEReport, q.QEReportSignature) || !pcsdoc.VerifyRawECDSA(ak, q.SignedData, q.Signature) {
			b.Fatal("signature did not verify")
		}
	})
}
