package collateral

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/internal/testcert"
)

// testCert returns a self-signed certificate and its DER encoding.
func testCert(t *testing.T) (*x509.Certificate, []byte, *ecdsa.PrivateKey) {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	tmpl := testcert.Template(1, "test root", true, x509.KeyUsageCertSign|x509.KeyUsageCRLSign)
	cert := testcert.Issue(t, tmpl, nil, &key.PublicKey, key)
	return cert, cert.Raw, key
}

func TestLoadPathIdentifiesByContent(t *testing.T) {
	cert, der, key := testCert(t)
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
	}, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	files := map[string][]byte{
		// Names deliberately mislead: the content decides.
		"a.json":    der,
		"b.pem":     crlDER,
		"c.txt":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
		"d.bin":     []byte(`{"tcbInfo":{"fmspc":"00A06D080000"},"signature":"00"}`),
		"e.der":     []byte(`{"enclaveIdentity":{"id":"QE"},"signature":"00"}`),
		"f.crt":     []byte(`{"keys":[]}`),
		"g.md":      []byte("# notes\n"),
		"h.pem":     append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER})...),
		"i.other":   []byte(`{"something":1}`),
		"j.broken":  []byte(`{"tcbInfo":`),
		"k.swidtag": []byte("\xef\xbb\xbf<SoftwareIdentity/>\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "x.der"), der, 0o600); err != nil {
		t.Fatal(err)
	}

	set, err := LoadPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Kind]int{KindCertificate: 2, KindCRL: 2, KindPublicKey: 1, KindTCBInfo: 1, KindQEIdentity: 1, KindJWKS: 1, KindJSON: 1, KindXML: 1}
	for kind, n := range want {
		if got := len(set.OfKind(kind)); got != n {
			t.Errorf("kind %s: got %d items, want %d", kind, got, n)
		}
	}
	if len(set.Ignored) != 2 {
		t.Errorf("ignored = %q, want the notes file and the broken JSON", set.Ignored)
	}
	if len(set.SelfSigned()) != 2 {
		t.Errorf("SelfSigned: got %d, want 2", len(set.SelfSigned()))
	}
}

func TestLoadPathMissing(t *testing.T) {
	if _, err := LoadPath(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("LoadPath of a missing path succeeded")
	}
}

func TestAddBytesGarbage(t *testing.T) {
	inputs := [][]byte{nil, {}, {0x30}, {0x30, 0x82, 0xff, 0xff}, []byte("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"), []byte("[1,"), []byte("{")}
	for _, in := range inputs {
		s := &Set{}
		if n, reason := s.AddBytes("input", in); n != 0 || reason == "" {
			t.Errorf("AddBytes(%q) = %d, %q; want 0 items and a reason", in, n, reason)
		}
	}
}

func FuzzAddBytes(f *testing.F) {
	f.Add([]byte(`{"tcbInfo":{}}`))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Set{}
		s.AddBytes("fuzz", data)
		for _, it := range s.Items {
			if it.Kind == KindCertificate && it.Certificate == nil {
				t.Fatal("certificate item without a parsed certificate")
			}
		}
	})
}
