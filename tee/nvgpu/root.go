package nvgpu

import (
	"crypto/x509"
	_ "embed"
	"sync"

	"github.com/cloister-dev/cloister/attest"
)

// rootPEM is the NVIDIA Device Identity CA (CN=NVIDIA Device Identity CA,
// O=NVIDIA, ECDSA P-384, valid 2021-11-05 to 9999-12-31), the root of the
// GPU device identity certificates, as the nvtrust local GPU verifier ships
// it (verifier_device_root.pem).
//
//go:embed nvidia_device_identity_ca.pem
var rootPEM []byte

// RootFingerprint is the SHA-256 fingerprint of the DER encoding of the
// NVIDIA Device Identity CA.
const RootFingerprint = "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"

// embeddedRoots returns the pinned root, or an error when the embedded file
// does not match RootFingerprint.
var embeddedRoots = sync.OnceValues(func() ([]*x509.Certificate, error) {
	return attest.ParsePinnedRoot("NVIDIA Device Identity CA", rootPEM, RootFingerprint)
})
