package emudir

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A key and a certificate written by WriteKey and WriteCert read back
// equal, the key file only for its owner.
func TestKeyAndCertRoundTrip(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "emudir test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, certPath := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	if err := WriteKey(keyPath, key); err != nil {
		t.Fatal(err)
	}
	if err := WriteCert(certPath, cert); err != nil {
		t.Fatal(err)
	}

	gotKey, err := ReadKey[*ecdsa.PrivateKey](keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !gotKey.Equal(key) {
		t.Error("key read back differs")
	}
	gotCert, err := ReadCert(certPath)
	if err != nil {
		t.Fatal(err)
	}
	if !gotCert.Equal(cert) {
		t.Error("certificate read back differs")
	}
	if _, _, err := ReadCertAndKey[*ecdsa.PrivateKey](certPath, keyPath); err != nil {
		t.Errorf("ReadCertAndKey of a matching pair: %v", err)
	}

	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKeyPath := filepath.Join(dir, "other-key.pem")
	if err := WriteKey(otherKeyPath, otherKey); err != nil {
		t.Fatal(err)
	}
	_, _, err = ReadCertAndKey[*ecdsa.PrivateKey](certPath, otherKeyPath)
	if err == nil || !strings.Contains(err.Error(), "does not match the certificate") {
		t.Errorf("ReadCertAndKey of another key: error %v, want a mismatch", err)
	}
	info, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %o, want 600", mode)
	}
}

// ReadKey and ReadCert name the file and the problem when it contains no
// block of their type or a key of another type.
func TestReadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "key.pem")
	if err := WriteKey(keyPath, key); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no PEM here\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		read func() error
		want string
	}{
		{"other key type", func() error { _, err := ReadKey[*rsa.PrivateKey](keyPath); return err }, "contains a *ecdsa.PrivateKey key, expected *rsa.PrivateKey"},
		{"no key block", func() error { _, err := ReadKey[*ecdsa.PrivateKey](empty); return err }, "contains no PRIVATE KEY PEM block"},
		{"no certificate block", func() error { _, err := ReadCert(keyPath); return err }, "contains no CERTIFICATE PEM block"},
		{"missing file", func() error { _, err := ReadCert(filepath.Join(dir, "absent.pem")); return err }, "absent.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.read()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
