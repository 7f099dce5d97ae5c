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

// rimRootPEM is the NVIDIA CoRIM signing Root CA (CN=NVIDIA CoRIM signing
// Root CA, O=NVIDIA, C=US, ECDSA P-384, valid 2023-03-16 to 2053-03-08),
// the root of the certificates that sign NVIDIA's driver and VBIOS
// reference integrity manifests. It is the file
// guest_tools/gpu_verifiers/local_gpu_verifier/src/verifier/certs/verifier_RIM_root.pem
// of github.com/NVIDIA/nvtrust at commit
// 028173093d43dbf37364bdc39ad7e696bccbce2e, unchanged there since commit
// 08a50685e45b0c050274d35f3d1eff884ea0708e (July 2023).
//
//go:embed nvidia_rim_root_ca.pem
var rimRootPEM []byte

// RIMRootFingerprint is the SHA-256 fingerprint of the DER encoding of the
// NVIDIA CoRIM signing Root CA.
const RIMRootFingerprint = "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1"

// embeddedRIMRoots returns the pinned RIM root, or an error when the
// embedded file does not match RIMRootFingerprint.
var embeddedRIMRoots = sync.OnceValues(func() ([]*x509.Certificate, error) {
	return attest.ParsePinnedRoot("NVIDIA CoRIM signing Root CA", rimRootPEM, RIMRootFingerprint)
})
