package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/internal/testcert"
)

var chainTestTime = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

type chainTestCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newChainCert(t *testing.T, cn string, parent *chainTestCA, isCA bool, notAfter time.Time) *chainTestCA {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: chainTestTime.Add(-time.Hour), NotAfter: notAfter,
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	parentCert, signer := tmpl, key
	if parent != nil {
		parentCert, signer = parent.cert, parent.key
	}
	return &chainTestCA{cert: testcert.Issue(t, tmpl, parentCert, &key.PublicKey, signer), key: key}
}

func TestVerifyChainErrors(t *testing.T) {
	later := chainTestTime.Add(48 * time.Hour)
	root := newChainCert(t, "Test Root", nil, true, later)
	other := newChainCert(t, "Other Root", nil, true, later)
	inter := newChainCert(t, "Test Intermediate", root, true, later)
	leaf := newChainCert(t, "Test Leaf", inter, false, later)
	shortLeaf := newChainCert(t, "Short Leaf", inter, false, chainTestTime.Add(time.Hour))

	tests := []struct {
		name          string
		leaf          *x509.Certificate
		intermediates []*x509.Certificate
		roots         []*x509.Certificate
		at            time.Time
		want          string
	}{
		{"valid", leaf.cert, []*x509.Certificate{inter.cert}, []*x509.Certificate{root.cert}, chainTestTime, ""},
		{"missing intermediate", leaf.cert, nil, []*x509.Certificate{root.cert}, chainTestTime, `issuer "CN=Test Intermediate" is missing`},
		{"untrusted root", leaf.cert, []*x509.Certificate{inter.cert, root.cert}, []*x509.Certificate{other.cert}, chainTestTime, "not a trusted root"},
		{"no roots", leaf.cert, []*x509.Certificate{inter.cert}, nil, chainTestTime, "no trusted root"},
		{"expired leaf", shortLeaf.cert, []*x509.Certificate{inter.cert}, []*x509.Certificate{root.cert}, chainTestTime.Add(2 * time.Hour), "expired"},
		{"not yet valid", leaf.cert, []*x509.Certificate{inter.cert}, []*x509.Certificate{root.cert}, chainTestTime.Add(-2 * time.Hour), "not yet valid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chain, err := VerifyChain(tc.leaf, tc.intermediates, tc.roots, tc.at)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(chain) != 3 {
					t.Errorf("chain of %d certificates, expected 3", len(chain))
				}
				return
			}
			if !errors.Is(err, ErrChain) {
				t.Fatalf("error %v is not ErrChain", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestChainCacheWindow(t *testing.T) {
	root := newChainCert(t, "Test Root", nil, true, chainTestTime.Add(48*time.Hour))
	leaf := newChainCert(t, "Test Leaf", root, false, chainTestTime.Add(time.Hour))
	var cache ChainCache
	key := ChainKey(leaf.cert.Raw, root.cert.Raw)
	if _, ok := cache.Lookup(key, chainTestTime); ok {
		t.Fatal("empty cache returned a chain")
	}
	cache.Store(key, []*x509.Certificate{leaf.cert, root.cert})
	if _, ok := cache.Lookup(key, chainTestTime); !ok {
		t.Error("stored chain not found inside its validity window")
	}
	if _, ok := cache.Lookup(key, chainTestTime.Add(2*time.Hour)); ok {
		t.Error("chain returned after the leaf expired")
	}
	if _, ok := cache.Lookup(key, chainTestTime.Add(-2*time.Hour)); ok {
		t.Error("chain returned before the certificates were valid")
	}
	if _, ok := cache.Lookup(ChainKey(leaf.cert.Raw), chainTestTime); ok {
		t.Error("chain returned for another key")
	}
}

func TestChainKeyLengthPrefix(t *testing.T) {
	if ChainKey([]byte("ab"), []byte("c")) == ChainKey([]byte("a"), []byte("bc")) {
		t.Error("different certificate lists share a key")
	}
}

func TestParsePinnedRoot(t *testing.T) {
	root := newChainCert(t, "Test Root", nil, true, chainTestTime.Add(time.Hour))
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.cert.Raw})
	sum := DescribeRoot(root.cert, nil).SHA256.String()
	if _, err := ParsePinnedRoot("test root", pemData, sum); err != nil {
		t.Fatalf("matching fingerprint rejected: %v", err)
	}
	if _, err := ParsePinnedRoot("test root", pemData, strings.Repeat("0", 64)); err == nil {
		t.Error("wrong fingerprint accepted")
	}
	if _, err := ParsePinnedRoot("test root", []byte("not pem"), sum); err == nil {
		t.Error("non-PEM input accepted")
	}
}
