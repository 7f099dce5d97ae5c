package nitro

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	cose "github.com/veraison/go-cose"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// testPKI is a locally generated root, intermediate and document
// certificate, shaped like the AWS chain.
type testPKI struct {
	root, intermediate, leaf *x509.Certificate
	leafKey                  *ecdsa.PrivateKey
}

var testTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	notBefore, notAfter := testTime.Add(-time.Hour), testTime.Add(24*time.Hour)
	usage := x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	rootKey, interKey, leafKey := testcert.ECDSAKey(t, elliptic.P384()), testcert.ECDSAKey(t, elliptic.P384()), testcert.ECDSAKey(t, elliptic.P384())
	root := testcert.Issue(t, testcert.CA(1, "test.nitro-enclaves", notBefore, notAfter, usage), nil, &rootKey.PublicKey, rootKey)
	inter := testcert.Issue(t, testcert.CA(2, "zonal.test.nitro-enclaves", notBefore, notAfter, usage), root, &interKey.PublicKey, rootKey)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "i-0123.test.aws"},
		NotBefore: testTime.Add(-time.Hour), NotAfter: testTime.Add(3 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	leaf := testcert.Issue(t, leafTmpl, inter, &leafKey.PublicKey, interKey)
	return &testPKI{root: root, intermediate: inter, leaf: leaf, leafKey: leafKey}
}

// field is one key and raw CBOR value of a payload map, kept in order so
// that a test can repeat a key or break the encoding.
type field struct {
	key string
	raw []byte
}

// validFields returns the fields of a well-formed document.
func (p *testPKI) validFields(t testing.TB) []field {
	pcr := func(b byte) []byte { return bytes.Repeat([]byte{b}, 48) }
	pcrs := map[uint]any{0: pcr(0xa0), 1: pcr(0xa1), 2: pcr(0xa2), 3: pcr(0), 4: pcr(0xa4), 8: pcr(0)}
	return []field{
		{"module_id", testcert.CBOR(t, "i-0123-enc0123")},
		{"digest", testcert.CBOR(t, "SHA384")},
		{"timestamp", testcert.CBOR(t, uint64(testTime.UnixMilli()))},
		{"pcrs", testcert.CBOR(t, pcrs)},
		{"certificate", testcert.CBOR(t, p.leaf.Raw)},
		{"cabundle", testcert.CBOR(t, [][]byte{p.root.Raw, p.intermediate.Raw})},
		{"public_key", testcert.CBOR(t, nil)},
		{"user_data", testcert.CBOR(t, []byte("report data"))},
		{"nonce", testcert.CBOR(t, []byte{1, 2, 3, 4})},
	}
}

// encodeMap encodes fields as a definite-length CBOR map in the given
// order, repeats included.
func encodeMap(t testing.TB, fields []field) []byte {
	t.Helper()
	if len(fields) > 23 {
		t.Fatal("encodeMap supports at most 23 fields")
	}
	out := []byte{0xa0 | byte(len(fields))}
	for _, f := range fields {
		out = append(out, testcert.CBOR(t, f.key)...)
		out = append(out, f.raw...)
	}
	return out
}

func replace(fields []field, key string, raw []byte) []field {
	out := append([]field{}, fields...)
	for i := range out {
		if out[i].key == key {
			out[i].raw = raw
		}
	}
	return out
}

func without(fields []field, key string) []field {
	var out []field
	for _, f := range fields {
		if f.key != key {
			out = append(out, f)
		}
	}
	return out
}

// sign wraps payload in a COSE_Sign1 message signed with ES384 by the
// document certificate's key.
func (p *testPKI) sign(t testing.TB, payload []byte, tagged bool) []byte {
	t.Helper()
	return testcert.Sign1(t, p.leafKey, cose.AlgorithmES384, payload, tagged)
}

func (p *testPKI) options() attest.Options {
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: p.root.Raw, Certificate: p.root})
	return attest.Options{At: testTime, TrustAnchors: anchors}
}

func TestVerifyGeneratedDocument(t *testing.T) {
	p := newTestPKI(t)
	payload := encodeMap(t, p.validFields(t))
	for _, tagged := range []bool{true, false} {
		data := p.sign(t, payload, tagged)
		v := &Verifier{}
		if !v.Detect(data) {
			t.Fatalf("tagged=%v: not detected", tagged)
		}
		claims, err := v.Verify(context.Background(), attest.Evidence{Data: data}, p.options())
		if err != nil {
			t.Fatalf("tagged=%v: %v", tagged, err)
		}
		if claims.Attributes["cose_tagged"] != tagged {
			t.Errorf("cose_tagged %v, expected %v", claims.Attributes["cose_tagged"], tagged)
		}
		if claims.TrustAnchor.Kind != attest.AnchorCallerRoot {
			t.Errorf("trust anchor kind %s, expected %s", claims.TrustAnchor.Kind, attest.AnchorCallerRoot)
		}
		if claims.Debug {
			t.Error("debug reported for non-zero PCR0-2")
		}
		if got := string(claims.ReportData); got != "report data" {
			t.Errorf("report data %q, expected user_data", got)
		}
		if len(claims.Measurements) != 6 {
			t.Errorf("%d measurements, expected the 6 PCRs", len(claims.Measurements))
		}
		if _, ok := claims.Attributes["public_key"]; ok {
			t.Error("null public_key reported as an attribute")
		}
	}
}

func TestVerifyGeneratedDebugDocument(t *testing.T) {
	p := newTestPKI(t)
	zero := make([]byte, 48)
	pcrs := testcert.CBOR(t, map[uint]any{0: zero, 1: zero, 2: zero, 4: bytes.Repeat([]byte{1}, 48)})
	data := p.sign(t, encodeMap(t, replace(p.validFields(t), "pcrs", pcrs)), true)
	claims, err := (&Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, p.options())
	if err != nil {
		t.Fatal(err)
	}
	if !claims.Debug {
		t.Error("debug not reported for zero PCR0, PCR1 and PCR2")
	}
}

func TestVerifyGeneratedWithoutItsRoot(t *testing.T) {
	p := newTestPKI(t)
	data := p.sign(t, encodeMap(t, p.validFields(t)), true)
	// No anchors: the embedded AWS root is the only trusted root, and the
	// document's own cabundle[0] must not be trusted in its place.
	_, err := (&Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{At: testTime})
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error %v, expected ErrChain", err)
	}
	if !strings.Contains(err.Error(), "root") {
		t.Errorf("error %q does not name the root", err)
	}
}

func TestVerifyGeneratedInvalidBundleRoot(t *testing.T) {
	p := newTestPKI(t)
	tests := []struct {
		name string
		root []byte
	}{
		{"garbage", []byte("not a certificate")},
		{"truncated", p.root.Raw[:len(p.root.Raw)-1]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bundle := testcert.CBOR(t, [][]byte{tc.root, p.intermediate.Raw})
			data := p.sign(t, encodeMap(t, replace(p.validFields(t), "cabundle", bundle)), true)
			// The same verifier first verifies the valid document, so that a
			// chain cache keyed without cabundle[0] would hide the check.
			v := &Verifier{}
			if _, err := v.Verify(context.Background(), attest.Evidence{Data: p.sign(t, encodeMap(t, p.validFields(t)), true)}, p.options()); err != nil {
				t.Fatal(err)
			}
			_, err := v.Verify(context.Background(), attest.Evidence{Data: data}, p.options())
			if !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, expected ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), "cabundle[0]") {
				t.Errorf("error %q does not name cabundle[0]", err)
			}
		})
	}
}

func TestVerifyGeneratedWrongSigner(t *testing.T) {
	p := newTestPKI(t)
	other := newTestPKI(t)
	// The document names other's certificate and chain, which verify, but
	// p's key signed it.
	fields := replace(p.validFields(t), "certificate", testcert.CBOR(t, other.leaf.Raw))
	fields = replace(fields, "cabundle", testcert.CBOR(t, [][]byte{other.root.Raw, other.intermediate.Raw}))
	data := p.sign(t, encodeMap(t, fields), true)
	opts := other.options()
	_, err := (&Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, opts)
	if !errors.Is(err, attest.ErrSignature) {
		t.Fatalf("error %v, expected ErrSignature", err)
	}
}

func TestParseStrictRules(t *testing.T) {
	p := newTestPKI(t)
	valid := p.validFields(t)
	indefiniteMap := append([]byte{0xbf}, encodeMap(t, valid)[1:]...)
	indefiniteMap = append(indefiniteMap, 0xff)
	tests := []struct {
		name    string
		payload []byte
		want    string
	}{
		{"duplicate key", encodeMap(t, append(valid, field{"nonce", testcert.CBOR(t, []byte{9})})), "duplicate"},
		{"trailing bytes", append(encodeMap(t, valid), 0x00), "extraneous"},
		{"indefinite-length map", indefiniteMap, "indefinite"},
		{"indefinite-length bytes", encodeMap(t, replace(valid, "user_data", []byte{0x5f, 0x41, 0x01, 0xff})), "indefinite"},
		{"oversized user_data", encodeMap(t, replace(valid, "user_data", testcert.CBOR(t, make([]byte, maxUserDataSize+1)))), "user_data"},
		{"oversized nonce", encodeMap(t, replace(valid, "nonce", testcert.CBOR(t, make([]byte, maxUserDataSize+1)))), "nonce"},
		{"empty public_key", encodeMap(t, replace(valid, "public_key", testcert.CBOR(t, []byte{}))), "public_key"},
		{"PCR index 32", encodeMap(t, replace(valid, "pcrs", testcert.CBOR(t, map[uint]any{0: make([]byte, 48), 32: make([]byte, 48)}))), "index 32"},
		{"PCR text key", encodeMap(t, replace(valid, "pcrs", testcert.CBOR(t, map[string]any{"0": make([]byte, 48)}))), "pcrs"},
		{"PCR value size", encodeMap(t, replace(valid, "pcrs", testcert.CBOR(t, map[uint]any{0: make([]byte, 20)}))), "20 bytes"},
		{"SHA-256 size PCR", encodeMap(t, replace(valid, "pcrs", testcert.CBOR(t, map[uint]any{0: make([]byte, 48), 1: make([]byte, 32)}))), "pcrs[1]: PCR value is 32 bytes"},
		{"SHA-512 size PCR", encodeMap(t, replace(valid, "pcrs", testcert.CBOR(t, map[uint]any{0: make([]byte, 64)}))), "pcrs[0]: PCR value is 64 bytes"},
		{"no PCRs", encodeMap(t, replace(valid, "pcrs", testcert.CBOR(t, map[uint]any{}))), "0 PCRs"},
		{"wrong digest", encodeMap(t, replace(valid, "digest", testcert.CBOR(t, "SHA256"))), "digest"},
		{"digest as bytes", encodeMap(t, replace(valid, "digest", testcert.CBOR(t, []byte("SHA384")))), "text string"},
		{"missing module_id", encodeMap(t, without(valid, "module_id")), "module_id"},
		{"empty module_id", encodeMap(t, replace(valid, "module_id", testcert.CBOR(t, ""))), "empty"},
		{"null certificate", encodeMap(t, replace(valid, "certificate", testcert.CBOR(t, nil))), "certificate"},
		{"oversized certificate", encodeMap(t, replace(valid, "certificate", testcert.CBOR(t, make([]byte, maxCertSize+1)))), "certificate"},
		{"empty cabundle", encodeMap(t, replace(valid, "cabundle", testcert.CBOR(t, [][]byte{}))), "empty"},
		{"zero timestamp", encodeMap(t, replace(valid, "timestamp", testcert.CBOR(t, 0))), "timestamp"},
		{"negative timestamp", encodeMap(t, replace(valid, "timestamp", testcert.CBOR(t, -5))), "timestamp"},
		{"unknown field", encodeMap(t, append(valid, field{"extra", testcert.CBOR(t, 1)})), "unknown field"},
		{"tagged value", encodeMap(t, replace(valid, "nonce", append([]byte{0xc2}, testcert.CBOR(t, []byte{1})...))), "tag"},
		{"not a map", testcert.CBOR(t, []int{1, 2}), "map"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDocument(p.sign(t, tc.payload, true))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, attest.ErrMalformed) {
				t.Errorf("error %v is not ErrMalformed", err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestParseOptionalFields(t *testing.T) {
	p := newTestPKI(t)
	valid := p.validFields(t)
	tests := []struct {
		name         string
		fields       []field
		hasUserData  bool
		hasNonce     bool
		publicKeyLen int
	}{
		{"null user_data", replace(valid, "user_data", testcert.CBOR(t, nil)), false, true, 0},
		{"absent nonce", without(valid, "nonce"), true, false, 0},
		{"empty nonce", replace(valid, "nonce", testcert.CBOR(t, []byte{})), true, true, 0},
		{"max user_data", replace(valid, "user_data", testcert.CBOR(t, make([]byte, maxUserDataSize))), true, true, 0},
		{"public_key", replace(valid, "public_key", testcert.CBOR(t, []byte{1, 2, 3})), true, true, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := ParseDocument(p.sign(t, encodeMap(t, tc.fields), true))
			if err != nil {
				t.Fatal(err)
			}
			if doc.HasUserData != tc.hasUserData {
				t.Errorf("HasUserData %v, expected %v", doc.HasUserData, tc.hasUserData)
			}
			if doc.HasNonce != tc.hasNonce {
				t.Errorf("HasNonce %v, expected %v", doc.HasNonce, tc.hasNonce)
			}
			if len(doc.PublicKey) != tc.publicKeyLen {
				t.Errorf("public key of %d bytes, expected %d", len(doc.PublicKey), tc.publicKeyLen)
			}
		})
	}
}

func TestParseEnvelopeRules(t *testing.T) {
	p := newTestPKI(t)
	payload := encodeMap(t, p.validFields(t))
	good := p.sign(t, payload, true)

	es256Key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := cose.NewSigner(cose.AlgorithmES256, es256Key)
	if err != nil {
		t.Fatal(err)
	}
	es256, err := cose.Sign1(rand.Reader, signer, cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256}}, payload, nil)
	if err != nil {
		t.Fatal(err)
	}

	es384, err := cose.NewSigner(cose.AlgorithmES384, p.leafKey)
	if err != nil {
		t.Fatal(err)
	}
	critical := cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES384, cose.HeaderLabelCritical: []any{int64(99)}, int64(99): "x"}
	withCrit, err := cose.Sign1(rand.Reader, es384, cose.Headers{Protected: critical}, payload, nil)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		data []byte
		kind error
	}{
		{"empty", nil, attest.ErrMalformed},
		{"unknown critical header", withCrit, attest.ErrMalformed},
		{"trailing byte", append(append([]byte{}, good...), 0), attest.ErrMalformed},
		{"other tag", append([]byte{0xd1}, good[1:]...), attest.ErrMalformed},
		{"ES256", es256, attest.ErrUnsupported},
		{"random", []byte{0x84, 0x01, 0x02, 0x03, 0x04}, attest.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDocument(tc.data)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, expected %v", err, tc.kind)
			}
		})
	}
}

func TestRandomInputsRejected(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	v := &Verifier{}
	for i := 0; i < 2000; i++ {
		data := make([]byte, rng.IntN(512))
		for j := range data {
			data[j] = byte(rng.UintN(256))
		}
		if i%2 == 0 && len(data) > 1 {
			data[0], data[1] = 0xd2, 0x84
		}
		if _, err := v.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{}); err == nil {
			t.Fatalf("random input %x accepted", data)
		}
		v.Detect(data)
	}
}

func TestOpenAttesterWithoutDevice(t *testing.T) {
	if _, err := OpenAttester(); err == nil {
		t.Skip("/dev/nsm is present: this is a Nitro enclave")
	} else if !errors.Is(err, attest.ErrNoDevice) {
		t.Fatalf("error %v does not wrap ErrNoDevice", err)
	}
}
