package nvgpu

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// FuzzParseReport checks that no input makes the SPDM parser panic, and
// that a parsed report keeps its invariants.
func FuzzParseReport(f *testing.F) {
	for _, c := range corpus.Cases(f, "nvidia-gpu") {
		report, err := hex.DecodeString(string(bytes.TrimSpace(c.EvidenceBytes(f))))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(report)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		if len(r.Response.Signature) != SignatureSize {
			t.Fatalf("signature of %d bytes", len(r.Response.Signature))
		}
		if len(r.Signed)+SignatureSize+r.Trailing != len(data) {
			t.Fatalf("signed %d + signature + trailing %d != %d bytes", len(r.Signed), r.Trailing, len(data))
		}
		r.Response.Fields.Attributes()
	})
}

// FuzzVerify checks that no evidence text makes the verifier panic.
func FuzzVerify(f *testing.F) {
	corpus.AddSeeds(f, corpus.Cases(f, "nvidia-gpu"))
	f.Add([]byte(`[{"attestationReportHexStr":"11e001ff","certChainBase64Encoded":""}]`))
	f.Add([]byte(`{"evidences":[{"evidence":"EeAB/w==","certificate":""}]}`))
	corpus.FuzzVerifier(f, &Verifier{}, attest.Options{})
}
