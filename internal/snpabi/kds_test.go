package snpabi_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/internal/snpabi"
)

// corpusCert reads a certificate of the evidence corpus.
func corpusCert(t testing.TB, rel string) *x509.Certificate {
	t.Helper()
	der, err := os.ReadFile(filepath.Join(corpus.Dir(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func kdsOID(arcs ...int) asn1.ObjectIdentifier {
	return append(slices.Clone(snpabi.OIDKDS), arcs...)
}

func TestParseKDSExtensionsCorpus(t *testing.T) {
	tests := []struct {
		file, kind, product string
		hwidSize            int
	}{
		{"snp/milan-vcek-v2-cmc/vcek.der", "VCEK", snpabi.ProductMilan, snpabi.ChipIDSize},
		{"snp/genoa-vcek-v3-azure-trustee/vcek.der", "VCEK", snpabi.ProductGenoa, snpabi.ChipIDSize},
		{"snp/milan-vlek-v3-aws-trustee/vlek.der", "VLEK", snpabi.ProductMilan, 0},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			cert := corpusCert(t, tc.file)
			ext, err := snpabi.ParseKDSExtensions(cert.Extensions, tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			if ext.Product != tc.product {
				t.Errorf("product is %q, expected %q", ext.Product, tc.product)
			}
			if !strings.HasPrefix(ext.ProductName, tc.product) {
				t.Errorf("product name %q does not start with %q", ext.ProductName, tc.product)
			}
			if len(ext.HWID) != tc.hwidSize {
				t.Errorf("hwid is %d bytes, expected %d", len(ext.HWID), tc.hwidSize)
			}
			if tc.kind == "VLEK" && ext.CSPID == "" {
				t.Error("VLEK has no CSP_ID")
			}
			for _, f := range snpabi.TCBLayout(ext.Product) {
				if _, ok := ext.SPL[f.SPLArc]; !ok {
					t.Errorf("%s security patch level is missing", f.Name)
				}
			}
		})
	}
}

// Real VCEKs carry the hwid as raw bytes. The parser also accepts it
// wrapped in a DER OCTET STRING.
func TestParseKDSExtensionsHWIDForms(t *testing.T) {
	cert := corpusCert(t, "snp/milan-vcek-v2-cmc/vcek.der")
	raw, err := snpabi.ParseKDSExtensions(cert.Extensions, "VCEK")
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := asn1.Marshal(raw.HWID)
	if err != nil {
		t.Fatal(err)
	}
	exts := replaceExtension(cert.Extensions, kdsOID(snpabi.KDSHWID), wrapped)
	ext, err := snpabi.ParseKDSExtensions(exts, "VCEK")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ext.HWID, raw.HWID) {
		t.Errorf("wrapped hwid is %x, expected %x", ext.HWID, raw.HWID)
	}
}

// replaceExtension returns a copy of exts with the value of id replaced, or
// the extension removed when value is nil.
func replaceExtension(exts []pkix.Extension, id asn1.ObjectIdentifier, value []byte) []pkix.Extension {
	var out []pkix.Extension
	for _, e := range exts {
		if e.Id.Equal(id) {
			if value == nil {
				continue
			}
			e.Value = value
		}
		out = append(out, e)
	}
	return out
}

func TestParseKDSExtensionsRejects(t *testing.T) {
	cert := corpusCert(t, "snp/milan-vcek-v2-cmc/vcek.der")
	printable, _ := asn1.MarshalWithParams("Milan-B0", "printable")
	bigSPL, _ := asn1.Marshal(256)
	hwidExt := func() pkix.Extension {
		for _, e := range cert.Extensions {
			if e.Id.Equal(kdsOID(snpabi.KDSHWID)) {
				return e
			}
		}
		t.Fatal("corpus VCEK has no hwid extension")
		return pkix.Extension{}
	}
	cspID, _ := asn1.MarshalWithParams("csp", "ia5")
	noProduct, _ := asn1.MarshalWithParams("-0000000", "ia5")
	tests := []struct {
		name    string
		exts    []pkix.Extension
		kind    string
		wantErr string
	}{
		{"repeated hwid", append(slices.Clone(cert.Extensions), hwidExt()), "VCEK", "extension 1.3.6.1.4.1.3704.1.4 appears twice"},
		{"productName not IA5String", replaceExtension(cert.Extensions, kdsOID(snpabi.KDSProductName), printable), "VCEK", "not an IA5String"},
		{"productName missing", replaceExtension(cert.Extensions, kdsOID(snpabi.KDSProductName), nil), "VCEK", "productName extension (1.3.6.1.4.1.3704.1.2) is missing"},
		{"productName without product line", replaceExtension(cert.Extensions, kdsOID(snpabi.KDSProductName), noProduct), "VCEK", `"-0000000" names no product line`},
		{"SPL above 255", replaceExtension(cert.Extensions, kdsOID(snpabi.KDSSPL, 3), bigSPL), "VCEK", "value 256 is outside 0 to 255"},
		{"SPL missing", replaceExtension(cert.Extensions, kdsOID(snpabi.KDSSPL, 8), nil), "VCEK", "microcode security patch level extension (1.3.6.1.4.1.3704.1.3.8) is missing"},
		{"hwid of 10 bytes", replaceExtension(cert.Extensions, kdsOID(snpabi.KDSHWID), make([]byte, 10)), "VCEK", "hwid is 10 bytes"},
		{"VCEK without hwid", replaceExtension(cert.Extensions, kdsOID(snpabi.KDSHWID), nil), "VCEK", "VCEK has no hwid extension"},
		{"VCEK with CSP_ID", append(slices.Clone(cert.Extensions), pkix.Extension{Id: kdsOID(snpabi.KDSCSPID), Value: cspID}), "VCEK", "VCEK carries a CSP_ID extension"},
		{"VLEK with hwid", cert.Extensions, "VLEK", "VLEK has no CSP_ID extension"},
		{"unknown kind", cert.Extensions, "VCEK2", `certificate kind "VCEK2" is neither VCEK nor VLEK`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := snpabi.ParseKDSExtensions(tc.exts, tc.kind)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzParseKDSExtensions replaces the value of one KDS extension of a real
// VCEK. The parser must not panic, and what it accepts must be consistent.
func FuzzParseKDSExtensions(f *testing.F) {
	cert := corpusCert(f, "snp/milan-vcek-v2-cmc/vcek.der")
	var kdsExts []pkix.Extension
	for _, e := range cert.Extensions {
		if len(e.Id) > len(snpabi.OIDKDS) && e.Id[:len(snpabi.OIDKDS)].Equal(snpabi.OIDKDS) {
			kdsExts = append(kdsExts, e)
		}
	}
	for i, e := range kdsExts {
		f.Add(uint8(i), e.Value)
	}
	f.Fuzz(func(t *testing.T, index uint8, value []byte) {
		exts := slices.Clone(kdsExts)
		exts[int(index)%len(exts)].Value = value
		ext, err := snpabi.ParseKDSExtensions(exts, "VCEK")
		if err != nil {
			return
		}
		if ext.Product == "" {
			t.Error("accepted an empty product")
		}
		if len(ext.HWID) != snpabi.ChipIDSize && len(ext.HWID) != snpabi.TurinHWIDSize {
			t.Errorf("accepted a hwid of %d bytes", len(ext.HWID))
		}
	})
}
