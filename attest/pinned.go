package attest

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// ParsePinnedRoot parses an embedded vendor root certificate from PEM and
// checks its SHA-256 fingerprint (of the DER, lowercase hexadecimal). A
// mismatch means the binary was built from a modified tree, so the caller
// must fail verification rather than trust an unknown root.
func ParsePinnedRoot(name string, pemData []byte, sha256Hex string) ([]*x509.Certificate, error) {
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("embedded %s is not a PEM certificate", name)
	}
	sum := sha256.Sum256(block.Bytes)
	if got := hex.EncodeToString(sum[:]); got != sha256Hex {
		return nil, fmt.Errorf("embedded %s has fingerprint %s, expected %s", name, got, sha256Hex)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("embedded %s: %w", name, err)
	}
	return []*x509.Certificate{cert}, nil
}
