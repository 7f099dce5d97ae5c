package nvgpu

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

var testTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testGPU is a generated device: a root, an intermediate and a leaf whose
// TcbInfo extension carries fwid in NVIDIA's layout.
type testGPU struct {
	root, intermediate, leaf *x509.Certificate
	leafKey                  *ecdsa.PrivateKey
	// rootKey and interKey sign OCSP responses about the intermediate
	// and the leaf.
	rootKey, interKey *ecdsa.PrivateKey
	fwid              []byte
}

func newTestGPU(t testing.TB, fwid []byte, tcbInfo []byte) *testGPU {
	t.Helper()
	notBefore, notAfter := testTime.Add(-time.Hour), testTime.Add(24*time.Hour)
	rootKey, interKey, leafKey := testcert.ECDSAKey(t, elliptic.P384()), testcert.ECDSAKey(t, elliptic.P384()), testcert.ECDSAKey(t, elliptic.P384())
	root := testcert.Issue(t, testcert.CA(1, "Test Device Identity CA", notBefore, notAfter, x509.KeyUsageCertSign), nil, &rootKey.PublicKey, rootKey)
	inter := testcert.Issue(t, testcert.CA(2, "Test GH100 Identity", notBefore, notAfter, x509.KeyUsageCertSign), root, &interKey.PublicKey, rootKey)
	if tcbInfo == nil {
		tcbInfo = nvidiaTcbInfo(t, fwid)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "GH100 A01 GSP FMC LF"},
		NotBefore: testTime.Add(-time.Hour), NotAfter: testTime.Add(3 * time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidTCGDICETcbInfo, Value: tcbInfo}},
	}
	leaf := testcert.Issue(t, leafTmpl, inter, &leafKey.PublicKey, interKey)
	return &testGPU{root: root, intermediate: inter, leaf: leaf, leafKey: leafKey, rootKey: rootKey, interKey: interKey, fwid: fwid}
}

// nvidiaTcbInfo encodes the TcbInfo extension as NVIDIA GPU certificates
// carry it: a version, a SubjectPublicKeyInfo and one FWID.
func nvidiaTcbInfo(t testing.TB, fwidValue []byte) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := asn1.Marshal(struct {
		Version int
		SPKI    asn1.RawValue
		FWID    fwid
	}{1, asn1.RawValue{FullBytes: spki}, fwid{HashAlg: oidSHA384, Digest: fwidValue}})
	if err != nil {
		t.Fatal(err)
	}
	return inner
}

// dmtfBlock encodes one measurement block with a 48-byte digest value.
func dmtfBlock(index byte, value []byte) []byte {
	out := []byte{index, measurementSpecDMTF}
	out = binary.LittleEndian.AppendUint16(out, uint16(3+len(value)))
	out = append(out, 0x01)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(value)))
	return append(out, value...)
}

func opaqueItem(typ uint16, value []byte) []byte {
	out := binary.LittleEndian.AppendUint16(nil, typ)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(value)))
	return append(out, value...)
}

// reportParts are the pieces of a generated report, editable by tests
// before signing.
type reportParts struct {
	version byte
	// operation is the request's Param2: 0xff requests every block.
	operation byte
	nonce     []byte
	numBlocks byte
	record    []byte
	opaque    []byte
}

func (g *testGPU) parts(nonce []byte) reportParts {
	var record []byte
	for i := byte(1); i <= 3; i++ {
		record = append(record, dmtfBlock(i, bytes.Repeat([]byte{i}, 48))...)
	}
	opaque := opaqueItem(3, []byte("550.90.07\x00"))
	opaque = append(opaque, opaqueItem(opaqueVBIOSVersion, []byte{0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0})...)
	opaque = append(opaque, opaqueItem(opaqueFWID, g.fwid)...)
	return reportParts{version: spdmVersion11, operation: 0xff, nonce: nonce, numBlocks: 3, record: record, opaque: opaque}
}

// build encodes and signs the request and response.
func (g *testGPU) build(t testing.TB, p reportParts) []byte {
	t.Helper()
	out := []byte{p.version, codeGetMeasurements, attrSignatureRequested, p.operation}
	out = append(out, p.nonce...)
	out = append(out, 0)
	out = append(out, p.version, codeMeasurements, 0, 0, p.numBlocks)
	n := len(p.record)
	out = append(out, byte(n), byte(n>>8), byte(n>>16))
	out = append(out, p.record...)
	out = append(out, bytes.Repeat([]byte{0xee}, NonceSize)...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(p.opaque)))
	out = append(out, p.opaque...)
	digest := sha512.Sum384(out)
	r, s, err := ecdsa.Sign(rand.Reader, g.leafKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return append(out, append(r.FillBytes(make([]byte, 48)), s.FillBytes(make([]byte, 48))...)...)
}

func (g *testGPU) chainPEM() []byte {
	var b bytes.Buffer
	for _, c := range []*x509.Certificate{g.leaf, g.intermediate, g.root} {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// options supplies the chain file, which ends with a copy of the root, and
// the root in a file of its own, as a collateral directory would.
func (g *testGPU) options(t testing.TB) attest.Options {
	set := &collateral.Set{}
	set.AddBytes("chain.pem", g.chainPEM())
	set.AddBytes("root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.root.Raw}))
	return attest.Options{At: testTime, Collateral: set}
}

func testNonce(b byte) []byte { return bytes.Repeat([]byte{b}, NonceSize) }

func testFWID(b byte) []byte { return bytes.Repeat([]byte{b}, fwidSize) }

func verifyHex(t *testing.T, report []byte, opts attest.Options) (*attest.Claims, error) {
	t.Helper()
	return (&Verifier{}).Verify(context.Background(), attest.Evidence{Data: []byte(hex.EncodeToString(report))}, opts)
}

func TestVerifyGeneratedReport(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	report := g.build(t, g.parts(testNonce(7)))
	opts := g.options(t)
	opts.Nonce = testNonce(7)
	claims, err := verifyHex(t, report, opts)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Product != "GH100" {
		t.Errorf("product %q, expected GH100", claims.Product)
	}
	if got := claims.Measurements["block2"]; !bytes.Equal(got, bytes.Repeat([]byte{2}, 48)) {
		t.Errorf("block2 %s", got)
	}
	if got := claims.Measurements["fwid"]; !bytes.Equal(got, testFWID(0xf1)) {
		t.Errorf("fwid %s", got)
	}
	if got := claims.Attributes["driver_version"]; got != "550.90.07" {
		t.Errorf("driver_version %v, expected 550.90.07", got)
	}
	if got := claims.Attributes["vbios_version"]; got != "96.00.9f.00.01" {
		t.Errorf("vbios_version %v, expected 96.00.9f.00.01", got)
	}
	if claims.TrustAnchor.Kind != attest.AnchorCallerRoot {
		t.Errorf("trust anchor kind %s, expected %s", claims.TrustAnchor.Kind, attest.AnchorCallerRoot)
	}
}

func TestVerifyTrailingBytes(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	report := g.build(t, g.parts(testNonce(7)))

	claims, err := verifyHex(t, append(append([]byte{}, report...), 0, 0), g.options(t))
	if err != nil {
		t.Fatalf("zero padding rejected: %v", err)
	}
	if len(claims.Warnings) != 1 {
		t.Errorf("warnings %v, expected one about the padding", claims.Warnings)
	}

	_, err = verifyHex(t, append(append([]byte{}, report...), 0, 1), g.options(t))
	if !errors.Is(err, attest.ErrMalformed) {
		t.Fatalf("error %v, expected ErrMalformed for a non-zero trailing byte", err)
	}
}

func TestVerifyFWIDMismatch(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	p := g.parts(testNonce(7))
	g.fwid = testFWID(0xf2)
	p.opaque = g.parts(testNonce(7)).opaque
	_, err := verifyHex(t, g.build(t, p), g.options(t))
	if !errors.Is(err, attest.ErrBinding) {
		t.Fatalf("error %v, expected ErrBinding", err)
	}
	if !strings.Contains(err.Error(), "FWID") {
		t.Errorf("error %q does not name the FWID", err)
	}
}

func TestVerifyStandardTcbInfo(t *testing.T) {
	// TCG DiceTcbInfo with the FWID in the [6] fwids list.
	list, err := asn1.Marshal([]fwid{{HashAlg: oidSHA384, Digest: testFWID(0xf3)}})
	if err != nil {
		t.Fatal(err)
	}
	list[0] = 0xa6 // [6] IMPLICIT, constructed
	vendor := []byte{0x80, 0x06, 'N', 'V', 'I', 'D', 'I', 'A'}
	body := append(vendor, list...)
	tcbInfo, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	if err != nil {
		t.Fatal(err)
	}
	g := newTestGPU(t, testFWID(0xf3), tcbInfo)
	if _, err := verifyHex(t, g.build(t, g.parts(testNonce(7))), g.options(t)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyUntrustedRoot(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	report := g.build(t, g.parts(testNonce(7)))
	// Only the leaf and intermediate: the embedded NVIDIA root is the
	// trusted one, and it did not issue this chain.
	set := &collateral.Set{}
	set.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: g.leaf.Raw, Certificate: g.leaf})
	set.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: g.intermediate.Raw, Certificate: g.intermediate})
	_, err := verifyHex(t, report, attest.Options{At: testTime, Collateral: set})
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error %v, expected ErrChain", err)
	}
}

func TestVerifyRootInChainFileNotTrusted(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	other := newTestGPU(t, testFWID(0xf2), nil)
	set := &collateral.Set{}
	set.AddBytes("chain.pem", g.chainPEM())
	set.AddBytes("root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.root.Raw}))
	_, err := verifyHex(t, g.build(t, g.parts(testNonce(7))), attest.Options{At: testTime, Collateral: set})
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error %v, expected ErrChain", err)
	}
	if !strings.Contains(err.Error(), "root") {
		t.Errorf("error %q does not name the root", err)
	}
}

func TestVerifyExpiredLeaf(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	opts := g.options(t)
	opts.At = testTime.Add(4 * time.Hour)
	_, err := verifyHex(t, g.build(t, g.parts(testNonce(7))), opts)
	if !errors.Is(err, attest.ErrChain) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("error %v, expected an expired certificate", err)
	}
}

func TestVerifyGeneratedMultiGPU(t *testing.T) {
	a := newTestGPU(t, testFWID(0xa1), nil)
	b := newTestGPU(t, testFWID(0xb1), nil)
	entry := func(g *testGPU, nonce []byte) map[string]string {
		return map[string]string{
			"attestationReportHexStr": hex.EncodeToString(g.build(t, g.parts(nonce))),
			"certChainBase64Encoded":  base64.StdEncoding.EncodeToString(g.chainPEM()),
		}
	}
	anchors := &collateral.Set{}
	for _, g := range []*testGPU{a, b} {
		anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: g.root.Raw, Certificate: g.root})
	}
	opts := attest.Options{At: testTime, TrustAnchors: anchors, Nonce: testNonce(9)}

	data, err := json.Marshal([]map[string]string{entry(a, testNonce(9)), entry(b, testNonce(9))})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := (&Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, opts)
	if err != nil {
		t.Fatal(err)
	}
	gpus := claims.Attributes["gpus"].([]map[string]any)
	if len(gpus) != 2 {
		t.Fatalf("%d GPUs in claims, expected 2", len(gpus))
	}
	if got := gpus[1]["measurements"].(map[string]attest.Hex)["fwid"]; !bytes.Equal(got, testFWID(0xb1)) {
		t.Errorf("second GPU fwid %s", got)
	}
	// The top-level measurements name the second GPU's values too, so
	// that a policy checks every GPU.
	if got := claims.Measurements["gpu1/fwid"]; !bytes.Equal(got, testFWID(0xb1)) {
		t.Errorf("measurements[gpu1/fwid] = %s, want the second GPU's fwid", got)
	}
	if got := claims.Measurements["fwid"]; bytes.Equal(got, testFWID(0xb1)) {
		t.Errorf("measurements[fwid] = %s, the second GPU's instead of the first's", got)
	}

	data, err = json.Marshal([]map[string]string{entry(a, testNonce(9)), entry(b, testNonce(8))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{At: testTime, TrustAnchors: anchors})
	if !errors.Is(err, attest.ErrBinding) {
		t.Fatalf("error %v, expected ErrBinding for different nonces", err)
	}
}

func TestParseReportRules(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	base := g.parts(testNonce(7))
	edit := func(f func(*reportParts)) []byte {
		p := base
		f(&p)
		return g.build(t, p)
	}
	tests := []struct {
		name string
		data []byte
		kind error
		want string
	}{
		{"SPDM 1.2", edit(func(p *reportParts) { p.version = 0x12 }), attest.ErrUnsupported, "version"},
		{"too few blocks", edit(func(p *reportParts) { p.numBlocks = 2 }), attest.ErrMalformed, "after the 2 blocks"},
		{"too many blocks", edit(func(p *reportParts) { p.numBlocks = 4 }), attest.ErrMalformed, "truncated"},
		{"repeated index", edit(func(p *reportParts) { p.record = append(p.record, dmtfBlock(1, make([]byte, 48))...); p.numBlocks = 4 }), attest.ErrMalformed, "twice"},
		{"no blocks", edit(func(p *reportParts) { p.numBlocks, p.record = 0, nil }), attest.ErrMalformed, "NumberOfBlocks is 0"},
		{"index past the count", edit(func(p *reportParts) {
			p.record = append(append([]byte{}, p.record[:2*len(dmtfBlock(1, make([]byte, 48)))]...), dmtfBlock(9, make([]byte, 48))...)
		}), attest.ErrMalformed, "index 9 is outside 1..3"},
		{"one block requested", edit(func(p *reportParts) {
			p.operation, p.numBlocks, p.record = 1, 1, dmtfBlock(1, make([]byte, 48))
		}), attest.ErrMalformed, "Param2"},
		{"non-DMTF block", edit(func(p *reportParts) { p.record = append([]byte{}, p.record...); p.record[1] = 0x02 }), attest.ErrMalformed, "DMTF"},
		{"repeated opaque type", edit(func(p *reportParts) { p.opaque = append(p.opaque, opaqueItem(3, []byte("1"))...) }), attest.ErrMalformed, "twice"},
		{"truncated opaque item", edit(func(p *reportParts) { p.opaque = append(p.opaque, 3, 0) }), attest.ErrMalformed, "too short"},
		{"opaque item overrun", edit(func(p *reportParts) { p.opaque = append(p.opaque, 40, 0, 9, 0, 1) }), attest.ErrMalformed, "truncated"},
		{"missing FWID", edit(func(p *reportParts) { p.opaque = opaqueItem(3, []byte("550")) }), attest.ErrMalformed, "FWID"},
		{"short FWID", edit(func(p *reportParts) { p.opaque = opaqueItem(opaqueFWID, make([]byte, 32)) }), attest.ErrMalformed, "FWID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyHex(t, tc.data, g.options(t))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, expected %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestParseRequestRules(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	good := g.build(t, g.parts(testNonce(7)))
	tests := []struct {
		name   string
		offset int
		value  byte
	}{
		{"request code", 1, 0xe1},
		{"no signature requested", 2, 0x00},
		{"response code", requestSize + 1, 0x61},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := append([]byte{}, good...)
			data[tc.offset] = tc.value
			if _, err := ParseReport(data); !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, expected ErrMalformed", err)
			}
		})
	}
}

func TestParseEvidenceForms(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"odd hex", "11e"},
		{"not hex", "zz"},
		{"empty array", "[]"},
		{"entry without report", `[{"certChainBase64Encoded":""}]`},
		{"bad chain base64", `[{"attestationReportHexStr":"11e0","certChainBase64Encoded":"!!"}]`},
		{"chain without PEM", `[{"attestationReportHexStr":"11e0","certChainBase64Encoded":"aGVsbG8="}]`},
		{"not JSON", "[1,"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseEvidence([]byte(tc.data)); !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, expected ErrMalformed", err)
			}
		})
	}
}

func TestRandomInputsRejected(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	v := &Verifier{}
	g := newTestGPU(t, testFWID(0xf1), nil)
	opts := g.options(t)
	good := g.build(t, g.parts(testNonce(7)))
	for i := 0; i < 2000; i++ {
		var data []byte
		switch i % 3 {
		case 0:
			data = make([]byte, rng.IntN(256))
			for j := range data {
				data[j] = byte(rng.UintN(256))
			}
		case 1:
			// A valid header followed by random bytes, as hex text.
			body := append([]byte{}, good[:requestSize+2]...)
			for range rng.IntN(600) {
				body = append(body, byte(rng.UintN(256)))
			}
			data = []byte(hex.EncodeToString(body))
		default:
			// The real report with one byte changed.
			body := append([]byte{}, good...)
			body[rng.IntN(len(body))] ^= byte(1 + rng.UintN(255))
			data = []byte(hex.EncodeToString(body))
		}
		if _, err := v.Verify(context.Background(), attest.Evidence{Data: data}, opts); err == nil {
			t.Fatalf("input %d accepted: %s", i, data)
		}
		v.Detect(data)
	}
}

func TestParseEvidenceDERChain(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	der := append(append(append([]byte{}, g.leaf.Raw...), g.intermediate.Raw...), g.root.Raw...)
	entry := []map[string]string{{
		"evidence":    hex.EncodeToString(g.build(t, g.parts(testNonce(7)))),
		"certificate": base64.StdEncoding.EncodeToString(der),
		"arch":        "HOPPER",
		"uuid":        "GPU-0000",
	}}
	// The wrappers of the SDK's evidence lists and of nvattest's output.
	for _, wrapper := range []string{"device_evidence_list", "evidence_list", "evidences"} {
		data, err := json.Marshal(map[string]any{wrapper: entry})
		if err != nil {
			t.Fatal(err)
		}
		gpus, err := ParseEvidence(data)
		if err != nil {
			t.Fatalf("%s: %v", wrapper, err)
		}
		if len(gpus) != 1 || len(gpus[0].Chain) != 3 {
			t.Fatalf("%s: parsed %d GPUs, expected one with a chain of 3 certificates", wrapper, len(gpus))
		}
		if gpus[0].Arch != "HOPPER" || gpus[0].UUID != "GPU-0000" {
			t.Errorf("%s: arch %q and uuid %q not kept", wrapper, gpus[0].Arch, gpus[0].UUID)
		}
	}
}

// TestVerifyArchMatchesChain checks that the unsigned arch of an evidence
// entry must agree with the chip that the device certificates name.
func TestVerifyArchMatchesChain(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	report := hex.EncodeToString(g.build(t, g.parts(testNonce(7))))
	chain := base64.StdEncoding.EncodeToString(g.chainPEM())
	tests := []struct {
		arch string
		ok   bool
	}{
		{"", true},
		{"HOPPER", true},
		{"Hopper", true},
		{"BLACKWELL", false},
		{"Ampere", false},
	}
	for _, tc := range tests {
		t.Run("arch "+tc.arch, func(t *testing.T) {
			data, err := json.Marshal([]map[string]string{{"evidence": report, "certificate": chain, "arch": tc.arch}})
			if err != nil {
				t.Fatal(err)
			}
			claims, err := (&Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, g.options(t))
			if tc.ok {
				if err != nil {
					t.Fatalf("arch %q rejected: %v", tc.arch, err)
				}
				if tc.arch != "" && claims.Attributes["arch"] != tc.arch {
					t.Errorf("arch attribute %v, expected %q", claims.Attributes["arch"], tc.arch)
				}
				return
			}
			if !errors.Is(err, attest.ErrBinding) {
				t.Fatalf("arch %q: error %v, expected ErrBinding", tc.arch, err)
			}
			if !strings.Contains(err.Error(), tc.arch) || !strings.Contains(err.Error(), "GH100") {
				t.Errorf("error %q names neither the arch %q nor the chip GH100", err, tc.arch)
			}
		})
	}
}
