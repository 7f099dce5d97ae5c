package dcap

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

func corpusQuotes(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, tee := range []string{"sgx", "tdx"} {
		for _, c := range corpus.Cases(t, tee) {
			out[c.Name] = c.EvidenceBytes(t)
		}
	}
	return out
}

// TestQuotePrefixesRejected verifies every proper prefix of each real
// quote: each must be rejected, without a panic. Bytes after the quote's
// own length are padding, so prefixes that keep the whole quote are valid.
func TestQuotePrefixesRejected(t *testing.T) {
	v := NewVerifier()
	for name, data := range corpusQuotes(t) {
		q, err := ParseQuote(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for n := 0; n < q.Length; n++ {
			if _, err := v.Verify(context.Background(), attest.Evidence{Data: data[:n]}, attest.Options{}); err == nil {
				t.Fatalf("%s: prefix of %d bytes accepted", name, n)
			}
		}
	}
}

func TestTrailingBytesNoted(t *testing.T) {
	for name, data := range corpusQuotes(t) {
		q, err := ParseQuote(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if q.Length+q.Trailing != len(data) {
			t.Errorf("%s: length %d + trailing %d != %d", name, q.Length, q.Trailing, len(data))
		}
		padded := append(append([]byte{}, data...), "a line of text\n"...)
		q2, err := ParseQuote(padded)
		if err != nil {
			t.Fatalf("%s with text appended: %v", name, err)
		}
		if q2.Trailing != q.Trailing+15 {
			t.Errorf("%s: trailing %d, expected %d", name, q2.Trailing, q.Trailing+15)
		}
	}
}

func TestRandomInputsRejected(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	v := NewVerifier()
	quotes := corpusQuotes(t)
	for i := 0; i < 2000; i++ {
		var data []byte
		switch i % 3 {
		case 0:
			data = make([]byte, rng.IntN(6000))
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			if len(data) >= 8 {
				copy(data, []byte{byte(3 + i%3), 0, 2, 0, 0x81 * byte(i%2), 0, 0, 0})
			}
		default:
			for _, q := range quotes {
				data = append([]byte{}, q...)
				break
			}
			for k := 0; k < 1+rng.IntN(4); k++ {
				data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
			}
		}
		claims, err := v.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{})
		if err == nil && claims.TCB.Status != attest.TCBNotDetermined {
			t.Fatalf("input %d verified with status %s and no collateral", i, claims.TCB.Status)
		}
	}
}

func TestParsedFieldOffsets(t *testing.T) {
	for _, c := range corpus.Cases(t, "tdx") {
		data := c.EvidenceBytes(t)
		q, err := ParseQuote(data)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		bodyStart := headerSize
		if q.Header.Version == 5 {
			bodyStart += 6
		}
		if got, want := attest.Hex(q.TD.ReportData[:]).String(), attest.Hex(data[bodyStart+520:bodyStart+584]).String(); got != want {
			t.Errorf("%s: report data %s, expected %s", c.Name, got, want)
		}
		if q.TD.Is15 != (q.Header.Version == 5) {
			t.Errorf("%s: TDX 1.5 body %v for quote version %d", c.Name, q.TD.Is15, q.Header.Version)
		}
	}
}

func FuzzParseQuote(f *testing.F) {
	for _, data := range corpusQuotes(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := ParseQuote(data)
		if err != nil {
			return
		}
		if q.Length > len(data) || len(q.SignedData) > q.Length {
			t.Fatalf("lengths out of range: quote %d, signed %d, input %d", q.Length, len(q.SignedData), len(data))
		}
		if (q.Enclave == nil) == (q.TD == nil) {
			t.Fatal("exactly one of the SGX and TD bodies must be set")
		}
	})
}

func FuzzParsePCKExtensions(f *testing.F) {
	for _, data := range corpusQuotes(f) {
		q, err := ParseQuote(data)
		if err != nil {
			continue
		}
		certs, err := parsePEMChain(q.PCKChainPEM)
		if err != nil {
			continue
		}
		for _, ext := range certs[0].Extensions {
			if ext.Id.Equal(OIDSGXExtensions) {
				f.Add(ext.Value)
			}
		}
	}
	if der, err := marshalPCKExtensions(); err == nil {
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := ParsePCKExtensions(der)
		if err != nil {
			return
		}
		if len(p.FMSPC) != 6 || len(p.PCEID) != 2 {
			t.Fatalf("FMSPC %x or PCE ID %x of the wrong size accepted", p.FMSPC, p.PCEID)
		}
	})
}

// FuzzParseCollateral parses TCB Info and QE Identity bodies and evaluates
// the parsed TCB Info against a real platform, which must not panic
// whatever the levels hold.
func FuzzParseCollateral(f *testing.F) {
	var ext *PCKExtensions
	var td *TDReport
	for _, tee := range []string{"sgx", "tdx"} {
		for _, c := range corpus.Cases(f, tee) {
			for _, it := range c.Collateral(f).Items {
				if it.Kind == collateral.KindTCBInfo || it.Kind == collateral.KindQEIdentity {
					f.Add(it.Raw)
				}
			}
			q, err := ParseQuote(c.EvidenceBytes(f))
			if err != nil || q.TD == nil {
				continue
			}
			if certs, err := parsePEMChain(q.PCKChainPEM); err == nil {
				if e, err := PCKExtensionsFromCert(certs[0]); err == nil {
					ext, td = e, q.TD
				}
			}
		}
	}
	if ext == nil {
		f.Skip("no TDX platform in the corpus")
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if info, _, err := ParseTCBInfo(raw); err == nil {
			_, _ = EvaluatePlatform(info, ext, td)
			_, _ = EvaluatePlatform(info, ext, nil)
		}
		if id, _, err := ParseEnclaveIdentity(raw); err == nil {
			_, _, _ = MatchQEIdentity(id, &EnclaveReport{})
		}
	})
}

func TestInspectCorpusQuotes(t *testing.T) {
	v := NewVerifier()
	for name, data := range corpusQuotes(t) {
		view, err := v.Inspect(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		qv := view.(*QuoteView)
		if qv.FMSPC == "" || len(qv.PCKChain) != 3 {
			t.Errorf("%s: FMSPC %q and %d chain certificates, expected an FMSPC and 3", name, qv.FMSPC, len(qv.PCKChain))
		}
		if _, err := json.Marshal(view); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
