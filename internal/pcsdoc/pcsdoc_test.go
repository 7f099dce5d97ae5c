package pcsdoc_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/internal/pcsdoc"
)

// tdxCase is a corpus folder with Intel PCS TCB Info, QE Identity and
// their issuer chains.
const tdxCase = "tdx/emr-v4-azure-cmc"

func corpusFile(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpus.Dir(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// signingKey returns the key of the first certificate of a corpus issuer
// chain, the Intel SGX TCB Signing certificate.
func signingKey(t *testing.T, rel string) *ecdsa.PublicKey {
	t.Helper()
	block, _ := pem.Decode(corpusFile(t, rel))
	if block == nil {
		t.Fatalf("%s has no PEM block", rel)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("%s: the first certificate has no ECDSA key", rel)
	}
	return key
}

func TestSplitCorpusDocuments(t *testing.T) {
	tests := []struct {
		file, chain string
		members     []string
		bodyPrefix  string
	}{
		{"tcb_info.json", "tcb_info_issuer_chain.pem", []string{"tcbInfo"}, `{"id":"TDX"`},
		{"qe_identity.json", "qe_identity_issuer_chain.pem", []string{"enclaveIdentity", "qeIdentity"}, `{"id":"TD_QE"`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw := corpusFile(t, tdxCase+"/"+tc.file)
			doc, err := pcsdoc.Split(raw, tc.members...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(doc.Body), tc.bodyPrefix) {
				t.Errorf("body starts with %.30q, expected %q", doc.Body, tc.bodyPrefix)
			}
			if len(doc.Signature) != pcsdoc.SignatureSize {
				t.Errorf("signature is %d bytes, expected %d", len(doc.Signature), pcsdoc.SignatureSize)
			}
			key := signingKey(t, tdxCase+"/"+tc.chain)
			if !pcsdoc.VerifyRawECDSA(key, doc.Body, doc.Signature) {
				t.Error("the signature does not verify under the TCB signing key")
			}

			altered := append([]byte(nil), doc.Body...)
			altered[len(altered)/2] ^= 1
			if pcsdoc.VerifyRawECDSA(key, altered, doc.Signature) {
				t.Error("the signature verifies over an altered body")
			}
			if pcsdoc.VerifyRawECDSA(key, doc.Body, doc.Signature[:pcsdoc.SignatureSize-1]) {
				t.Error("a 63-byte signature verifies")
			}

			body, err := pcsdoc.SignedObject(raw, tc.members...)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != string(doc.Body) {
				t.Error("SignedObject and Split return different bodies")
			}
		})
	}
}

func TestSplitRejects(t *testing.T) {
	sig := `"` + strings.Repeat("ab", pcsdoc.SignatureSize) + `"`
	tests := []struct {
		name, raw  string
		members    []string
		wantMember string
		wantReason string
	}{
		{"invalid JSON", `{"tcbInfo":`, []string{"tcbInfo"}, "", "invalid JSON"},
		{"no signed object", `{"signature":` + sig + `}`, []string{"enclaveIdentity", "qeIdentity"}, "", `no "enclaveIdentity" or "qeIdentity" object`},
		{"other signed object", `{"enclaveIdentity":{},"signature":` + sig + `}`, []string{"tcbInfo"}, "", `no "tcbInfo" object`},
		{"no members", `{"tcbInfo":{}}`, nil, "", "no signed object member to look for"},
		{"signature missing", `{"tcbInfo":{}}`, []string{"tcbInfo"}, "signature", "missing or not a string"},
		{"signature a number", `{"tcbInfo":{},"signature":1}`, []string{"tcbInfo"}, "signature", "missing or not a string"},
		{"signature not hexadecimal", `{"tcbInfo":{},"signature":"zz"}`, []string{"tcbInfo"}, "signature", "not 64 bytes of hexadecimal"},
		{"signature of 63 bytes", `{"tcbInfo":{},"signature":"` + strings.Repeat("ab", 63) + `"}`, []string{"tcbInfo"}, "signature", "is 63 bytes, not 64 bytes of hexadecimal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pcsdoc.Split([]byte(tc.raw), tc.members...)
			var splitErr *pcsdoc.Error
			if !errors.As(err, &splitErr) {
				t.Fatalf("error %v is not a *pcsdoc.Error", err)
			}
			if splitErr.Member != tc.wantMember {
				t.Errorf("member is %q, expected %q", splitErr.Member, tc.wantMember)
			}
			if splitErr.Reason != tc.wantReason {
				t.Errorf("reason is %q, expected %q", splitErr.Reason, tc.wantReason)
			}
		})
	}
}

func TestSplitTakesFirstMember(t *testing.T) {
	sig := `"` + strings.Repeat("ab", pcsdoc.SignatureSize) + `"`
	raw := []byte(`{"qeIdentity":{"a":1},"enclaveIdentity":{"b":2},"signature":` + sig + `}`)
	doc, err := pcsdoc.Split(raw, "enclaveIdentity", "qeIdentity")
	if err != nil {
		t.Fatal(err)
	}
	if string(doc.Body) != `{"b":2}` {
		t.Errorf("body is %s, expected the enclaveIdentity member", doc.Body)
	}
}

// FuzzSplit checks that Split does not panic and that an accepted body is
// valid JSON with a signature of SignatureSize bytes.
func FuzzSplit(f *testing.F) {
	f.Add(corpusFile(f, tdxCase+"/tcb_info.json"))
	f.Add(corpusFile(f, tdxCase+"/qe_identity.json"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := pcsdoc.Split(raw, "tcbInfo", "enclaveIdentity", "qeIdentity")
		if err != nil {
			return
		}
		if len(doc.Signature) != pcsdoc.SignatureSize {
			t.Errorf("accepted a signature of %d bytes", len(doc.Signature))
		}
		if len(doc.Body) == 0 {
			t.Error("accepted an empty body")
		}
	})
}
