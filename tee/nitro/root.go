package nitro

import (
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"sync"
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

// embeddedRoots returns the pinned AWS root. A mismatch with RootFingerprint
// means the binary was built from a modified tree; verification then fails
// rather than trusting an unknown root.
var embeddedRoots = sync.OnceValues(func() ([]*x509.Certificate, error) {
	block, _ := pem.Decode(rootPEM)
	if block == nil {
		return nil, fmt.Errorf("nitro: embedded AWS root is not PEM")
	}
	sum := sha256.Sum256(block.Bytes)
	if got := hex.EncodeToString(sum[:]); got != RootFingerprint {
		return nil, fmt.Errorf("nitro: embedded AWS root has fingerprint %s, expected %s", got, RootFingerprint)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("nitro: embedded AWS root: %w", err)
	}
	return []*x509.Certificate{cert}, nil
})
