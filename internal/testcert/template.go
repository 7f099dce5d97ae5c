package testcert

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// Template returns the template of a certificate with the serial number
// serial and the common name cn, and no organization, valid from an hour
// before now to an hour after, with the key usages usage. It is a CA
// certificate when ca is true.
func Template(serial int64, cn string, ca bool, usage x509.KeyUsage) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  ca,
		BasicConstraintsValid: true,
		KeyUsage:              usage,
	}
}
