package nitro

import (
	"crypto/x509"
	_ "embed"
	"sync"

	"github.com/cloister-dev/cloister/attest"
)

// rootPEM is the AWS Nitro Enclaves Root G1 certificate (CN=aws.nitro-enclaves,
// ECDSA P-384, valid 2019-10-28 to 2049-10-28), the single member of
// AWS_NitroEnclaves_Root-G1.zip that AWS publishes for the commercial
// partitions.
//
//go:embed aws_nitro_enclaves_root_g1.pem
var rootPEM []byte

// RootFingerprint is the SHA-256 fingerprint of the DER encoding of the AWS
// Nitro Enclaves Root G1, as AWS documents it in the Nitro Enclaves user
// guide ("Verifying the root of trust").
const RootFingerprint = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

// embeddedRoots returns the pinned root, or an error when the embedded file
// does not match RootFingerprint.
var embeddedRoots = sync.OnceValues(func() ([]*x509.Certificate, error) {
	return attest.ParsePinnedRoot("AWS Nitro Enclaves Root G1", rootPEM, RootFingerprint)
})
