package nvgpu

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// rimSigner is a generated RIM signing hierarchy: a root, an intermediate
// CA and a signing certificate, as NVIDIA's RIMs carry (with one CA less).
type rimSigner struct {
	root, intermediate, leaf *x509.Certificate
	key                      *ecdsa.PrivateKey
	intermediateKey          *ecdsa.PrivateKey
	rootKey                  *ecdsa.PrivateKey
}

func newRIMSigner(t testing.TB, leafNotAfter time.Time) *rimSigner {
	t.Helper()
	return newRIMSignerWithRoot(t, testTime.Add(365*24*time.Hour), leafNotAfter)
}

// newRIMSignerWithRoot returns a signer whose root expires at rootNotAfter,
// which may be before the intermediate CA and the signing certificate
// expire.
func newRIMSignerWithRoot(t testing.TB, rootNotAfter, leafNotAfter time.Time) *rimSigner {
	t.Helper()
	notBefore, notAfter := testTime.Add(-24*time.Hour), testTime.Add(365*24*time.Hour)
	rootKey, interKey := testcert.ECDSAKey(t, elliptic.P384()), testcert.ECDSAKey(t, elliptic.P384())
	root := testcert.Issue(t, testcert.CA(11, "Test CoRIM signing Root CA", notBefore, rootNotAfter, x509.KeyUsageCertSign), nil, &rootKey.PublicKey, rootKey)
	inter := testcert.Issue(t, testcert.CA(12, "Test Reference Value GH100 CA", notBefore, notAfter, x509.KeyUsageCertSign), root, &interKey.PublicKey, rootKey)
	s := &rimSigner{root: root, intermediate: inter, intermediateKey: interKey, rootKey: rootKey}
	return s.withLeaf(t, 13, leafNotAfter)
}

// withLeaf returns a signer under the same root and intermediate CA with a
// new signing certificate, of the given serial number, valid until
// notAfter.
func (s *rimSigner) withLeaf(t testing.TB, serial int64, notAfter time.Time) *rimSigner {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P384())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "Test RIM Signer"},
		NotBefore: testTime.Add(-24 * time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leaf := testcert.Issue(t, tmpl, s.intermediate, &key.PublicKey, s.intermediateKey)
	return &rimSigner{root: s.root, intermediate: s.intermediate, intermediateKey: s.intermediateKey, rootKey: s.rootKey, leaf: leaf, key: key}
}

// testRIM describes a RIM to generate.
type testRIM struct {
	version, product string
	measurements     []GoldenMeasurement
}

// golden returns an active measurement of 48 bytes with the given values.
func golden(index int, values ...[]byte) GoldenMeasurement {
	return GoldenMeasurement{Index: index, Name: fmt.Sprintf("Measurement_%d", index), Size: 48, Active: true, Values: values}
}

// xml writes the SWID tag in the layout of NVIDIA's RIMs.
func (r testRIM) xml() string {
	var b strings.Builder
	b.WriteString(`<SoftwareIdentity xmlns="` + swidNamespace + `" xmlns:ns0="` + swidNamespace + `" xmlns:ns2="` + sha384Namespace + `"`)
	fmt.Fprintf(&b, ` corpus="false" name="%s" patch="false" supplemental="false" tagId="test-%s" version="1.0" tagVersion="0">`+"\n", r.product, r.version)
	b.WriteString(`    <ns0:Entity name="NVIDIA Corporation" role="softwareCreator tagCreator"/>` + "\n")
	fmt.Fprintf(&b, `    <ns0:Meta colloquialVersion="%s" edition="GPU" product="%s" revision="r1"/>`+"\n", r.version, r.product)
	b.WriteString(`    <ns0:Payload xmlns:SHA384="` + sha384Namespace + `">` + "\n")
	for _, m := range r.measurements {
		active := "False"
		if m.Active {
			active = "True"
		}
		fmt.Fprintf(&b, `        <ns0:Resource type="Measurement" index="%d" active="%s" alternatives="%d"`, m.Index, active, len(m.Values))
		for i, v := range m.Values {
			fmt.Fprintf(&b, ` ns2:Hash%d="%s"`, i, hex.EncodeToString(v))
		}
		fmt.Fprintf(&b, ` name="%s" size="%d"/>`+"\n", m.Name, m.Size)
	}
	b.WriteString("    </ns0:Payload>\n</SoftwareIdentity>\n")
	return b.String()
}

// sign signs the document with an enveloped XML-DSig signature under
// C14N 1.1, ECDSA P-384 and SHA-384, as NVIDIA signs its RIMs. With raw
// set, the SignatureValue is in XML-DSig's r||s form, as in NVIDIA's files;
// otherwise it keeps goxmldsig's ASN.1 DER form.
func (s *rimSigner) sign(t testing.TB, document string, raw bool) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(document); err != nil {
		t.Fatal(err)
	}
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.leaf.Raw, s.intermediate.Raw, s.root.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Hash = crypto.SHA384
	ctx.Prefix = "ds"
	signed, err := ctx.SignEnveloped(doc.Root())
	if err != nil {
		t.Fatal(err)
	}
	if raw {
		rawSignature(t, signed)
	}
	out := etree.NewDocument()
	out.SetRoot(signed)
	data, err := out.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rawSignature rewrites the DER SignatureValue of signed as r||s.
func rawSignature(t testing.TB, signed *etree.Element) {
	t.Helper()
	value := signed.FindElement("./Signature/SignatureValue")
	der, err := base64.StdEncoding.DecodeString(value.Text())
	if err != nil {
		t.Fatal(err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		t.Fatal(err)
	}
	raw := append(rs.R.FillBytes(make([]byte, 48)), rs.S.FillBytes(make([]byte, 48))...)
	value.SetText(base64.StdEncoding.EncodeToString(raw))
}

// block returns the value of a generated report's block i: 48 bytes of i.
func block(i byte) []byte { return bytesOf(i, 48) }

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// matchingRIMs returns a driver and a VBIOS RIM that match the report of
// testGPU.parts: block 1 in the driver RIM, blocks 2 and 3 in the VBIOS
// RIM, with a non-matching alternative and an inactive wrong value.
func matchingRIMs() (driver, vbios testRIM) {
	inactive := golden(5, bytesOf(0xee, 48))
	inactive.Active = false
	driver = testRIM{version: "550.90.07", product: "GH100", measurements: []GoldenMeasurement{golden(0, block(1)), inactive}}
	vbios = testRIM{version: "96.00.9F.00.01", product: "GH100", measurements: []GoldenMeasurement{
		golden(1, bytesOf(0xaa, 48), block(2)), golden(2, block(3)),
	}}
	return driver, vbios
}

// rimOptions returns the GPU's options with the RIM files added as
// collateral and the signer's root as a trust anchor.
func rimOptions(t testing.TB, g *testGPU, s *rimSigner, files map[string][]byte) attest.Options {
	t.Helper()
	opts := g.options(t)
	set := opts.Collateral.(*collateral.Set)
	for name, data := range files {
		if n, reason := set.AddBytes(name, data); n != 1 {
			t.Fatalf("%s not loaded as collateral: %s", name, reason)
		}
	}
	if s != nil {
		anchors := &collateral.Set{}
		anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: s.root.Raw, Certificate: s.root, TEEs: []string{string(attest.TEENVGPU)}})
		opts.TrustAnchors = anchors
	}
	return opts
}
