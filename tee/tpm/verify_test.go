package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// testQuote describes a quote that signQuote builds and signs.
type testQuote struct {
	typ    tpm2.TPMST
	nonce  []byte
	pcrs   [][]byte // SHA-256 values of PCR 0, 1, ...
	scheme tpm2.TPMAlgID
}

func defaultTestQuote() testQuote {
	pcrs := make([][]byte, 24)
	for i := range pcrs {
		sum := sha256.Sum256([]byte{byte(i)})
		pcrs[i] = sum[:]
	}
	return testQuote{typ: tpm2.TPMSTAttestQuote, nonce: []byte("fresh nonce"), pcrs: pcrs, scheme: tpm2.TPMAlgRSASSA}
}

// marshalAttest encodes a TPMS_ATTEST over q's PCRs. For a type other
// than a quote it encodes a key certification.
func marshalAttest(q testQuote) []byte {
	digest := sha256.New()
	for _, v := range q.pcrs {
		digest.Write(v)
	}
	bitmap := make([]byte, 3)
	for i := range q.pcrs {
		bitmap[i/8] |= 1 << (i % 8)
	}
	body := tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            q.typ,
		QualifiedSigner: tpm2.TPM2BName{Buffer: []byte{0, 0x0b, 1, 2, 3}},
		ExtraData:       tpm2.TPM2BData{Buffer: q.nonce},
		ClockInfo:       tpm2.TPMSClockInfo{Clock: 1000, ResetCount: 1, Safe: true},
		FirmwareVersion: 0x2024010100010203,
	}
	if q.typ == tpm2.TPMSTAttestQuote {
		body.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: bitmap}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: digest.Sum(nil)},
		})
	} else {
		body.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{
			Name:          tpm2.TPM2BName{Buffer: []byte{0, 0x0b, 9}},
			QualifiedName: tpm2.TPM2BName{Buffer: []byte{0, 0x0b, 8}},
		})
	}
	return tpm2.Marshal(&body)
}

// signTPMT signs msg with key and encodes a TPMT_SIGNATURE of scheme.
func signTPMT(t *testing.T, key crypto.Signer, scheme tpm2.TPMAlgID, msg []byte) []byte {
	t.Helper()
	digest := sha256.Sum256(msg)
	var sig tpm2.TPMTSignature
	switch scheme {
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		var opts crypto.SignerOpts = crypto.SHA256
		if scheme == tpm2.TPMAlgRSAPSS {
			opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
		}
		raw, err := key.Sign(rand.Reader, digest[:], opts)
		if err != nil {
			t.Fatal(err)
		}
		contents := &tpm2.TPMSSignatureRSA{Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: raw}}
		sig = tpm2.TPMTSignature{SigAlg: scheme, Signature: tpm2.NewTPMUSignature(scheme, contents)}
	case tpm2.TPMAlgECDSA:
		r, s, err := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), digest[:])
		if err != nil {
			t.Fatal(err)
		}
		contents := &tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256,
			SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()}}
		sig = tpm2.TPMTSignature{SigAlg: scheme, Signature: tpm2.NewTPMUSignature(scheme, contents)}
	}
	return tpm2.Marshal(&sig)
}

// trusteeJSON encodes Trustee TPM evidence.
func trusteeJSON(t *testing.T, pub crypto.PublicKey, msg, sig []byte, pcrs [][]byte) []byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	hexPCRs := make([]string, len(pcrs))
	for i, v := range pcrs {
		hexPCRs[i] = hex.EncodeToString(v)
	}
	doc := map[string]any{
		"ak_public": base64.StdEncoding.EncodeToString(spki),
		"tpm_quote": map[string]any{
			"message":   base64.StdEncoding.EncodeToString(msg),
			"signature": base64.StdEncoding.EncodeToString(sig),
			"pcrs":      hexPCRs,
		},
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pinnedSet(t *testing.T, pub crypto.PublicKey) *collateral.Set {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	set := &collateral.Set{}
	if n, reason := set.AddBytes("pinned-ak.der", spki); n != 1 {
		t.Fatalf("adding the pinned AK: %s", reason)
	}
	return set
}

var (
	rsaKey, _   = rsa.GenerateKey(rand.Reader, 2048)
	otherKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _    = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
)

func TestVerifyQuoteCases(t *testing.T) {
	tests := []struct {
		name string
		// edit changes the quote description, the signed message or the
		// reported PCRs before the evidence is encoded.
		edit     func(q *testQuote)
		editMsg  func(msg []byte)
		editPCRs func(pcrs [][]byte) [][]byte
		signer   crypto.Signer
		// ak is the key the evidence names, and pinned the caller's key.
		ak       crypto.PublicKey
		pinned   crypto.PublicKey
		nonce    []byte
		wantKind error
		wantText string
	}{
		{name: "valid RSASSA quote", nonce: []byte("fresh nonce")},
		{name: "valid RSAPSS quote", edit: func(q *testQuote) { q.scheme = tpm2.TPMAlgRSAPSS }},
		{name: "valid ECDSA quote", edit: func(q *testQuote) { q.scheme = tpm2.TPMAlgECDSA }, signer: ecKey, ak: ecKey.Public(), pinned: ecKey.Public()},
		{name: "wrong nonce", nonce: []byte("other nonce"), wantKind: attest.ErrBinding, wantText: "nonce"},
		{name: "PCR value changed", editPCRs: func(p [][]byte) [][]byte { p[7][0] ^= 1; return p }, wantKind: attest.ErrBinding, wantText: "pcr"},
		{name: "PCR missing", editPCRs: func(p [][]byte) [][]byte { return p[:23] }, wantKind: attest.ErrMalformed, wantText: "pcr 23"},
		{name: "signed message altered", editMsg: func(m []byte) { m[len(m)-1] ^= 1 }, wantKind: attest.ErrSignature, wantText: "signature"},
		{name: "signed by another key", signer: otherKey, wantKind: attest.ErrSignature, wantText: "signature"},
		{name: "AK not pinned", pinned: otherKey.Public(), wantKind: attest.ErrChain, wantText: "pinned"},
		{name: "quote of another type", edit: func(q *testQuote) { q.typ = tpm2.TPMSTAttestCertify }, wantKind: attest.ErrUnsupported, wantText: "not a quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := defaultTestQuote()
			if tt.edit != nil {
				tt.edit(&q)
			}
			signer, ak, pinned := crypto.Signer(rsaKey), rsaKey.Public(), rsaKey.Public()
			if tt.signer != nil {
				signer = tt.signer
			}
			if tt.ak != nil {
				ak = tt.ak
			}
			if tt.pinned != nil {
				pinned = tt.pinned
			}
			msg := marshalAttest(q)
			sig := signTPMT(t, signer, q.scheme, msg)
			if tt.editMsg != nil {
				tt.editMsg(msg)
			}
			reported := q.pcrs
			if tt.editPCRs != nil {
				reported = tt.editPCRs(append([][]byte{}, q.pcrs...))
			}
			data := trusteeJSON(t, ak, msg, sig, reported)

			opts := attest.Options{Collateral: pinnedSet(t, pinned), Nonce: tt.nonce}
			claims, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, opts)
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got := claims.Nonce.String(); got != hex.EncodeToString(q.nonce) {
					t.Errorf("nonce = %s, want %x", got, q.nonce)
				}
				if got := claims.Measurements["pcr7"]; !bytesEqual(got, q.pcrs[7]) {
					t.Errorf("pcr7 = %s, want %x", got, q.pcrs[7])
				}
				if claims.TrustAnchor.Kind != attest.AnchorCallerKey {
					t.Errorf("trust anchor kind = %s, want %s", claims.TrustAnchor.Kind, attest.AnchorCallerKey)
				}
				return
			}
			if err == nil {
				t.Fatal("Verify accepted the evidence")
			}
			if !errors.Is(err, tt.wantKind) {
				t.Errorf("error kind = %s, want %v: %v", attest.KindName(err), tt.wantKind, err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

func bytesEqual(a, b []byte) bool { return hex.EncodeToString(a) == hex.EncodeToString(b) }

func TestVerifyNoTrust(t *testing.T) {
	q := defaultTestQuote()
	msg := marshalAttest(q)
	data := trusteeJSON(t, rsaKey.Public(), msg, signTPMT(t, rsaKey, q.scheme, msg), q.pcrs)
	_, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{})
	if !errors.Is(err, attest.ErrCollateralMissing) {
		t.Fatalf("error = %v, want a missing-collateral error", err)
	}
}

func TestVerifyUnselectedPCR(t *testing.T) {
	q := defaultTestQuote()
	msg := marshalAttest(q)
	sig := signTPMT(t, rsaKey, q.scheme, msg)
	extra := append(q.pcrs, make([]byte, 32))
	data := trusteeJSON(t, rsaKey.Public(), msg, sig, extra)
	_, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{Collateral: pinnedSet(t, rsaKey.Public())})
	if !errors.Is(err, attest.ErrBinding) || !strings.Contains(err.Error(), "PCR 24") {
		t.Fatalf("error = %v, want a binding error naming PCR 24", err)
	}
}

func TestDetect(t *testing.T) {
	q := defaultTestQuote()
	msg := marshalAttest(q)
	data := trusteeJSON(t, rsaKey.Public(), msg, signTPMT(t, rsaKey, q.scheme, msg), q.pcrs)
	if !(Verifier{}).Detect(data) {
		t.Error("Trustee JSON not detected")
	}
	for _, other := range [][]byte{nil, []byte("{}"), []byte(`{"hcl_report":"x","tpm_quote":{}}`), make([]byte, 100)} {
		if (Verifier{}).Detect(other) {
			t.Errorf("Detect(%q) = true", other)
		}
	}
}

func TestParseTrailingBytes(t *testing.T) {
	q := defaultTestQuote()
	msg := marshalAttest(q)
	if _, err := ParseAttest(msg); err != nil {
		t.Fatalf("ParseAttest: %v", err)
	}
	if _, err := ParseAttest(append(msg, 0)); !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "1 bytes follow") {
		t.Errorf("TPMS_ATTEST with a trailing byte: error = %v, want a malformed structure", err)
	}
	for _, scheme := range []tpm2.TPMAlgID{tpm2.TPMAlgRSASSA, tpm2.TPMAlgECDSA} {
		var signer crypto.Signer = rsaKey
		if scheme == tpm2.TPMAlgECDSA {
			signer = ecKey
		}
		sig := signTPMT(t, signer, scheme, msg)
		if _, err := ParseSignature(sig); err != nil {
			t.Fatalf("ParseSignature(%#x): %v", scheme, err)
		}
		if _, err := ParseSignature(append(sig, 0)); !errors.Is(err, attest.ErrMalformed) {
			t.Errorf("signature %#x with a trailing byte: error = %v, want a malformed structure", scheme, err)
		}
	}
}
