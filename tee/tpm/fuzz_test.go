package tpm

import (
	"crypto"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/cloister-dev/cloister/internal/corpus"
)

// corpusEvidence returns every parsable evidence of the corpus, to seed the
// fuzz targets.
func corpusEvidence(f *testing.F) []*Evidence {
	var out []*Evidence
	for _, c := range corpus.Cases(f, "tpm") {
		if ev, err := ParseEvidence(c.EvidenceBytes(f)); err == nil {
			out = append(out, ev)
		}
	}
	return out
}

func FuzzParseAttest(f *testing.F) {
	for _, ev := range corpusEvidence(f) {
		for _, q := range ev.Quotes {
			f.Add(q.Message)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAttest(data)
		if err != nil {
			return
		}
		if a.Quote == nil || a.Body == nil {
			t.Fatal("ParseAttest returned no quote and no error")
		}
		if n := len(tpm2.Marshal(a.Body)); n != len(data) {
			t.Fatalf("accepted %d bytes, but the structure encodes to %d", len(data), n)
		}
	})
}

func FuzzParseSignature(f *testing.F) {
	f.Add([]byte{0x00, 0x14, 0x00, 0x0b, 0x00, 0x01, 0xff})
	f.Add([]byte{0x00, 0x18, 0x00, 0x0b, 0x00, 0x01, 0x01, 0x00, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		sig, err := ParseSignature(data)
		if err == nil {
			decoded, _ := tpm2.Unmarshal[tpm2.TPMTSignature](data)
			if n := len(tpm2.Marshal(decoded)); n != len(data) {
				t.Fatalf("accepted %d bytes, but the signature encodes to %d", len(data), n)
			}
			_ = VerifySignature(rsaKey.Public(), data, sig)
			_ = VerifySignature(ecKey.Public(), data, sig)
		}
	})
}

// FuzzReplayEventLog replays arbitrary logs against the PCR values of the
// corpus quotes.
func FuzzReplayEventLog(f *testing.F) {
	var banks []PCRBank
	for _, ev := range corpusEvidence(f) {
		if len(ev.EventLog) > 0 {
			f.Add(ev.EventLog)
		}
		for _, q := range ev.Quotes {
			banks = append(banks, q.PCRs)
		}
	}
	b := newLogBuilder()
	b.event(0, 3, make([]byte, 32), append([]byte("StartupLocality\x00"), 3))
	f.Add(b.Bytes())
	if len(banks) == 0 {
		banks = append(banks, PCRBank{Hash: crypto.SHA256, Values: map[int][]byte{0: make([]byte, 32)}})
	}
	f.Fuzz(func(t *testing.T, log []byte) {
		for _, b := range banks {
			_, _ = ReplayEventLog(log, b)
		}
	})
}

// FuzzVerify runs the whole verifier on arbitrary evidence with the
// collateral of the first case, so that inputs close to real evidence
// reach the later checks.
func FuzzVerify(f *testing.F) {
	cases := corpus.Cases(f, "tpm")
	corpus.AddSeeds(f, cases)
	corpus.FuzzVerifier(f, Verifier{}, cases[0].Options(f))
}
