package ratls

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// seedExtensions returns the extension values of a freshly issued
// certificate and of the other layouts, as fuzz seeds.
func seedExtensions(t testing.TB) [][]byte {
	cert, err := Issue(context.Background(), &fakeAttester{}, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, ext := range cert.Leaf.Extensions {
		out = append(out, ext.Value)
	}
	return out
}

func FuzzParseTaggedEvidence(f *testing.F) {
	for _, v := range seedExtensions(f) {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseTaggedEvidence(data)
	})
}

func FuzzParseClaims(f *testing.F) {
	claims, _ := marshalClaims(make([]byte, 32), make([]byte, 32), 1, RoleServer)
	f.Add(claims)
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseClaims(data)
	})
}

func FuzzParseOpenEnclaveEvidence(f *testing.F) {
	keyPEM := append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("key")}), 0)
	f.Add(oeHeader(append(fakeReport(false, [32]byte{}, nil), keyPEM...)))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ce, err := ParseOpenEnclaveEvidence(data); err == nil {
			oePublicKey(ce.ClaimsBuffer)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	body, _ := encMode.Marshal(challengeResponse{Format: fakeFormat, Evidence: []byte("FAKE")})
	f.Add(body)
	f.Fuzz(func(t *testing.T, data []byte) {
		parseResponse(data)
	})
}

// FuzzReadClientResponse feeds the server's read of a client's challenge
// response, and the verification of what it accepts, arbitrary bytes.
func FuzzReadClientResponse(f *testing.F) {
	client := &fakeAttester{measurement: [32]byte{2}}
	cert, err := Issue(context.Background(), client, IssueOptions{Role: RoleClient})
	if err != nil {
		f.Fatal(err)
	}
	v := NewVerifier(acceptEmulated)
	peer, err := v.VerifyPeer(context.Background(), cert.Leaf, RoleClient)
	if err != nil {
		f.Fatal(err)
	}

	want, err := challengeReportData(RoleClient, make([]byte, 32), make([]byte, challengeNonceSize))
	if err != nil {
		f.Fatal(err)
	}
	ev, err := client.Attest(context.Background(), want)
	if err != nil {
		f.Fatal(err)
	}
	body, err := encMode.Marshal(challengeResponse{Format: ev.Format, Evidence: ev.Data, Aux: []byte("aux")})
	if err != nil {
		f.Fatal(err)
	}

	f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
	f.Add(binary.BigEndian.AppendUint32(nil, maxClientResponseSize+1))
	f.Add(body)
	f.Fuzz(func(t *testing.T, data []byte) {
		// The data is read as it is, and once more behind a correct length
		// prefix, so that the fuzzer need not match the prefix to reach
		// the CBOR decoding and the verification.
		framed := append(binary.BigEndian.AppendUint32(nil, uint32(len(data))), data...)
		for _, stream := range [][]byte{data, framed} {
			response, err := readResponse(bytes.NewReader(stream), maxClientResponseSize, RoleClient)
			if err != nil {
				continue
			}
			v.verifyFresh(context.Background(), response, want, peer, RoleClient)
		}
	})
}

// FuzzCertVerifier feeds whole certificates, PEM or DER, to the
// registered verifier's Detect, Inspect and Verify.
func FuzzCertVerifier(f *testing.F) {
	cert, err := Issue(context.Background(), &fakeAttester{}, IssueOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cert.Leaf.Raw)
	f.Add(gramineCert(f, gramineQuotes{tag: TagIntelQuoteGramine, legacyMeasurement: 7}).Raw)
	f.Add(oeCert(f, OIDOpenEnclaveEvidence, func(keyPEM []byte) []byte { return append(keyPEM, 0) }).Raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		v := certVerifier{}
		if v.Detect(data) {
			v.Inspect(data)
			if c, err := x509.ParseCertificate(data); err == nil {
				VerifyCertificate(context.Background(), c, attest.Options{})
			}
		}
	})
}

// Every proper prefix of a valid extension value is rejected without a
// panic.
func TestExtensionPrefixesRejected(t *testing.T) {
	cert, err := Issue(context.Background(), &fakeAttester{}, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range cert.Leaf.Extensions {
		var parse func([]byte) error
		switch {
		case ext.Id.Equal(OIDTaggedEvidence):
			parse = func(b []byte) error { _, err := ParseTaggedEvidence(b); return err }
		case ext.Id.Equal(OIDEndorsementManifest):
			parse = func(b []byte) error { _, err := ParseEndorsements(b, TagSNPReport); return err }
		default:
			continue
		}
		if err := parse(ext.Value); err != nil {
			t.Fatalf("%s: the full value is rejected: %v", ext.Id, err)
		}
		for n := 0; n < len(ext.Value); n++ {
			if err := parse(ext.Value[:n]); err == nil {
				t.Errorf("%s: prefix of %d of %d bytes accepted", ext.Id, n, len(ext.Value))
			}
		}
	}

	keyPEM := append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("key")}), 0)
	oe := oeHeader(append(fakeReport(false, [32]byte{}, nil), keyPEM...))
	for n := 0; n < len(oe); n++ {
		if ce, err := ParseOpenEnclaveEvidence(oe[:n]); err == nil {
			if _, err := oePublicKey(ce.ClaimsBuffer); err == nil {
				t.Errorf("Open Enclave prefix of %d of %d bytes accepted", n, len(oe))
			}
		}
	}
}
