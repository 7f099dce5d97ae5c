package snp

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

var errNoPEM = errors.New("no PEM block of the expected type")

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pemCert(cert *x509.Certificate) []byte { return pemBlock("CERTIFICATE", cert.Raw) }

// readPEM returns the first PEM block of type typ in the file at path.
func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("snp emulator: %w", err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("snp emulator: %s: %w %q", path, errNoPEM, typ)
		}
		if block.Type == typ {
			return block.Bytes, nil
		}
	}
}
