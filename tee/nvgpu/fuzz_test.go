package nvgpu

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"testing"
	"time"

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

// FuzzParseRIM checks that no document makes the RIM parser or the RIM
// signature check panic, that a parsed RIM keeps its invariants, and that
// the outcome that the RIM cache derives for a later time, after the
// signer expired, equals a new verification at that time. The seeds are
// generated RIMs, signed and unsigned.
func FuzzParseRIM(f *testing.F) {
	s := newRIMSigner(f, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	for _, r := range []testRIM{driver, vbios} {
		f.Add([]byte(r.xml()))
		f.Add(s.sign(f, r.xml(), true))
		f.Add(s.sign(f, r.xml(), false))
	}
	roots := []*x509.Certificate{s.root}
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := ParseRIM(data); err == nil {
			checkRIMInvariants(t, r)
		}
		v := newRIMVerification(data, roots, testTime)
		if v.outcome.err == nil {
			checkRIMInvariants(t, v.outcome.rim.RIM)
		}
		later := testTime.Add(2 * time.Hour)
		if out, ok := v.outcomeAt(later); ok {
			checkSameOutcome(t, out, newRIMVerification(data, roots, later).outcome)
		}
	})
}

func checkRIMInvariants(t *testing.T, r *RIM) {
	if r.Version == "" || len(r.Measurements) == 0 {
		t.Fatalf("parsed RIM without a version or measurements: %+v", r)
	}
	for i, m := range r.Measurements {
		if i > 0 && m.Index <= r.Measurements[i-1].Index {
			t.Fatalf("measurement indexes not strictly increasing: %+v", r.Measurements)
		}
		if len(m.Values) == 0 {
			t.Fatalf("measurement %d without values", m.Index)
		}
		for _, v := range m.Values {
			if len(v) != m.Size {
				t.Fatalf("measurement %d: value of %d bytes, size %d", m.Index, len(v), m.Size)
			}
		}
	}
}
