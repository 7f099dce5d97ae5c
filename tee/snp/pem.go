package snp

import (
	"crypto/x509"
	"encoding/pem"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pemCert(cert *x509.Certificate) []byte { return pemBlock("CERTIFICATE", cert.Raw) }
