package emudir

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// WriteCert writes cert to path as a CERTIFICATE PEM block with mode 0644,
// because a certificate is public.
func WriteCert(path string, cert *x509.Certificate) error {
	return WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

// WriteKey writes key to path as a PKCS #8 PRIVATE KEY PEM block with mode
// 0600, so that only its owner can read it.
func WriteKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding the key for %s: %w", path, err)
	}
	return WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// ReadCert returns the certificate of the first CERTIFICATE PEM block in
// the file at path.
func ReadCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}

// ReadKey returns the PKCS #8 private key of the first PRIVATE KEY PEM
// block in the file at path, which must be a K, such as an
// *ecdsa.PrivateKey.
func ReadKey[K crypto.Signer](path string) (K, error) {
	var zero K
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return zero, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	k, ok := key.(K)
	if !ok {
		return zero, fmt.Errorf("%s contains a %T key, expected %T", path, key, zero)
	}
	return k, nil
}

// ReadCertAndKey reads the certificate at certPath and the key at keyPath,
// which must be a K, and checks that the key belongs to the certificate.
func ReadCertAndKey[K crypto.Signer](certPath, keyPath string) (*x509.Certificate, K, error) {
	var zero K
	cert, err := ReadCert(certPath)
	if err != nil {
		return nil, zero, err
	}
	key, err := ReadKey[K](keyPath)
	if err != nil {
		return nil, zero, err
	}
	public, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !public.Equal(cert.PublicKey) {
		return nil, zero, fmt.Errorf("the key in %s does not match the certificate in %s", keyPath, certPath)
	}
	return cert, key, nil
}

// readPEM returns the bytes of the first PEM block of type typ in the file
// at path.
func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s contains no %s PEM block", path, typ)
		}
		if block.Type == typ {
			return block.Bytes, nil
		}
	}
}
