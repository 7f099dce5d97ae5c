package nvgpu

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/internal/testcert"
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
	for _, report := range emulatedReports(f) {
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
	for _, gpus := range []int{1, 2} {
		f.Add(attestEmulator(f, newEmulator(f, gpus), emulatorNonce(f)).Data)
	}
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
	emulatedRIMs, err := newEmulator(f, 1).RIMFiles()
	if err != nil {
		f.Fatal(err)
	}
	for _, data := range emulatedRIMs {
		f.Add(data)
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

// FuzzOCSPStatus checks that no OCSP response makes the ocsp check's
// status evaluation panic, and that a status it returns comes from a
// SingleResponse about the certificate, in a response that the issuer
// signed, and is good when current. The seeds are responses with one to
// three SingleResponses in varied order, conflicting ones, newer ones and
// one with a broken signature.
func FuzzOCSPStatus(f *testing.F) {
	g := newTestGPU(f, testFWID(0xf1), nil)
	other := newTestGPU(f, testFWID(0xf2), nil)
	revoked := statusWith(func(r *ocsp.Response) {
		r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, testTime.Add(-2*time.Hour), ocsp.KeyCompromise
	})
	good := signOCSP(f, g.intermediate, g.root, nil, g.rootKey, goodStatus)
	otherRevoked := signOCSP(f, other.intermediate, other.root, nil, other.rootKey, revoked)
	rootGood := signOCSP(f, g.root, g.root, nil, g.rootKey, goodStatus)
	tampered := append([]byte{}, good...)
	tampered[len(tampered)-1] ^= 0x01

	for _, seed := range [][]byte{
		good, tampered,
		signOCSP(f, g.intermediate, g.root, nil, g.rootKey, goodBetween(24*time.Hour, 48*time.Hour, false)),
		testcert.OCSPJoin(f, g.rootKey, otherRevoked, good),
		testcert.OCSPJoin(f, g.rootKey, rootGood, otherRevoked, good),
		testcert.OCSPJoin(f, g.rootKey, good, signOCSP(f, g.intermediate, g.root, nil, g.rootKey, revoked)),
	} {
		f.Add(seed)
	}
	target := ocspTarget{cert: g.intermediate, issuer: g.root, role: "GPU intermediate CA", required: true}
	now := testTime.Add(30 * 24 * time.Hour)

	f.Fuzz(func(t *testing.T, data []byte) {
		set := &collateral.Set{}
		set.AddBytes("fuzz.ocsp", data)
		responses, err := parseOCSPItems(set.OfKind(collateral.KindOCSP))
		if err != nil {
			return
		}
		st, err := target.status(responses, nil, testTime, now)
		if err != nil || st == nil {
			return
		}

		if !st.single.CertID.Matches(g.intermediate, g.root) {
			t.Fatalf("status from SingleResponse %d, which is about another certificate", st.single.Index)
		}
		if st.timing != ocspCurrent && st.timing != ocspNewer {
			t.Fatalf("status with timing %d, expected current or newer", st.timing)
		}
		if st.timing == ocspCurrent && st.single.Status != ocsp.Good {
			t.Fatalf("current status %d returned without an error, expected good", st.single.Status)
		}
		resp, err := ocsp.ParseResponseForCert(data, g.intermediate, g.root)
		if err != nil {
			t.Fatalf("status from a response that the issuer did not sign: %v", err)
		}
		if resp.Certificate != nil {
			t.Fatal("status from a response signed by a delegated responder, which the seeds do not have")
		}
	})
}

// emulatedReports returns the reports of an emulator with two GPUs.
func emulatedReports(f *testing.F) [][]byte {
	e := newEmulator(f, 2)
	var nonce [NonceSize]byte
	copy(nonce[:], emulatorNonce(f))
	var out [][]byte
	for _, g := range e.gpus {
		report, err := e.report(g, nonce)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, report)
	}
	return out
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
