package ratls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// gramineQuotes describes the two quotes of a Gramine certificate: the
// tagged evidence over the claims and the legacy quote over the key.
type gramineQuotes struct {
	tag uint64
	// legacyMeasurement and legacyDebug describe the enclave of the
	// legacy quote. The tagged evidence's enclave has measurement 7 and
	// no debug flag.
	legacyMeasurement byte
	legacyDebug       bool
	// legacyOtherKey binds the legacy quote to another key.
	legacyOtherKey bool
	// legacyBadSignature corrupts the legacy quote's signature.
	legacyBadSignature bool
	// extra is a further extension.
	extra *pkix.Extension
}

// gramineCert builds a certificate as Gramine 1.8 and later issue it:
// the tagged-evidence extension and the legacy quote extension side by
// side, each with its own quote.
func gramineCert(t testing.TB, q gramineQuotes) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	spki := spkiOf(t, key)
	spkiHash := sha256.Sum256(spki)
	entry, _ := encMode.Marshal([]any{uint64(hashSHA256), spkiHash[:]})
	claims, _ := encMode.Marshal(map[string]any{claimPubkeyHash: entry})
	rd := sha256.Sum256(claims)
	value, _ := encMode.Marshal(cborTag(q.tag, []any{fakeReport(false, [32]byte{7}, rd[:]), claims}))

	legacyRD := spkiHash
	if q.legacyOtherKey {
		other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		legacyRD = sha256.Sum256(spkiOf(t, other))
	}
	legacy := fakeReport(q.legacyDebug, [32]byte{q.legacyMeasurement}, legacyRD[:])
	if q.legacyBadSignature {
		legacy[len(legacy)-1] ^= 1
	}
	exts := []pkix.Extension{{Id: OIDGramineLegacyQuote, Value: legacy}, {Id: OIDTaggedEvidence, Value: value}}
	if q.extra != nil {
		exts = append(exts, *q.extra)
	}
	return selfSign(t, key, exts)
}

// A Gramine certificate carries two quotes. Both must verify, bind the
// certificate's key by their own rules and come from the same enclave,
// so that a verifier that reads either extension accepts the same TEE.
func TestGramineCertificateBothExtensions(t *testing.T) {
	cloister := issue(t, &fakeAttester{}, IssueOptions{})
	var cloisterExt pkix.Extension
	for _, ext := range cloister.Leaf.Extensions {
		if ext.Id.Equal(OIDTaggedEvidence) {
			cloisterExt = ext
		}
	}
	openEnclave := pkix.Extension{Id: OIDOpenEnclaveEvidence, Value: oeHeader(fakeReport(false, [32]byte{7}, nil))}

	tests := []struct {
		name   string
		quotes gramineQuotes
		cert   func(*testing.T) *x509.Certificate
		kind   error
		want   string
	}{
		{name: "same enclave", quotes: gramineQuotes{tag: TagIntelQuoteGramine, legacyMeasurement: 7}},
		{name: "legacy from another enclave", quotes: gramineQuotes{tag: TagIntelQuoteGramine, legacyMeasurement: 8},
			kind: attest.ErrBinding, want: "legacy quote's measurement differs"},
		{name: "legacy in debug mode", quotes: gramineQuotes{tag: TagIntelQuoteGramine, legacyMeasurement: 7, legacyDebug: true},
			kind: attest.ErrBinding, want: "debug"},
		{name: "legacy bound to another key", quotes: gramineQuotes{tag: TagIntelQuoteGramine, legacyMeasurement: 7, legacyOtherKey: true},
			kind: attest.ErrBinding, want: "SubjectPublicKeyInfo"},
		{name: "legacy signature invalid", quotes: gramineQuotes{tag: TagIntelQuoteGramine, legacyMeasurement: 7, legacyBadSignature: true},
			kind: attest.ErrSignature, want: "legacy quote"},
		{name: "SNP tag next to legacy", quotes: gramineQuotes{tag: TagSNPReport, legacyMeasurement: 7},
			kind: attest.ErrMalformed, want: "Intel quote tag"},
		{name: "Open Enclave extension as well", quotes: gramineQuotes{tag: TagIntelQuoteGramine, legacyMeasurement: 7, extra: &openEnclave},
			kind: attest.ErrMalformed, want: "3 attestation evidence extensions"},
		{name: "Cloister evidence next to legacy", cert: func(t *testing.T) *x509.Certificate {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return selfSign(t, key, []pkix.Extension{cloisterExt, {Id: OIDGramineLegacyQuote, Value: fakeReport(false, [32]byte{}, nil)}})
		}, kind: attest.ErrMalformed, want: "Cloister"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cert *x509.Certificate
			if tt.cert != nil {
				cert = tt.cert(t)
			} else {
				cert = gramineCert(t, tt.quotes)
			}
			claims, ce, err := VerifyCertificate(context.Background(), cert, attest.Options{})
			if tt.kind != nil {
				expectCertRejected(t, err, tt.kind, tt.want)
				return
			}
			expectCertVerified(t, claims, ce, err, LayoutTaggedEvidence, RuleTaggedSHA256)
			if ce.Legacy == nil {
				t.Error("the legacy quote is missing from the parsed evidence")
			}
		})
	}
}
