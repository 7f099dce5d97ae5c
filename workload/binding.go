package workload

import (
	"bytes"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// Sizes of the launch-configuration fields that bind a manifest digest.
const (
	snpHostDataSize   = 32
	tdxMRConfigIDSize = 48
)

// HostData returns the launch-configuration value that binds d for a TEE:
// the 32-byte HOST_DATA for SEV-SNP, and for TDX a 48-byte MRCONFIGID
// holding d followed by 16 zero bytes. Other TEEs have no such field.
func HostData(tee attest.TEE, d Digest) ([]byte, error) {
	switch tee {
	case attest.TEESNP:
		return bytes.Clone(d[:]), nil
	case attest.TEETDX:
		out := make([]byte, tdxMRConfigIDSize)
		copy(out, d[:])
		return out, nil
	}
	return nil, fmt.Errorf("TEE %q has no launch-configuration field to bind a manifest digest; use SEV-SNP (HOST_DATA) or TDX (MRCONFIGID)", tee)
}

// BoundDigest returns the manifest digest that verified claims bind in
// their host data (SEV-SNP HOST_DATA or TDX MRCONFIGID). It rejects claims
// without host data, host data of another size, and a TDX MRCONFIGID
// whose last 16 bytes are not zero.
func BoundDigest(c *attest.Claims) (Digest, error) {
	var d Digest
	hd := []byte(c.HostData)
	switch {
	case len(hd) == 0:
		return d, attest.Errorf(attest.ErrBinding, "host data", "the %s evidence carries no host data, so it binds no manifest", c.TEE).
			WithFix("launch the workload with the manifest digest as SEV-SNP HOST_DATA or TDX MRCONFIGID")
	case c.TEE == attest.TEESNP && len(hd) != snpHostDataSize,
		c.TEE == attest.TEETDX && len(hd) != tdxMRConfigIDSize:
		return d, attest.Errorf(attest.ErrBinding, "host data", "the %s host data is %d bytes, which is not the size of its launch-configuration field", c.TEE, len(hd))
	case c.TEE != attest.TEESNP && c.TEE != attest.TEETDX:
		return d, attest.Errorf(attest.ErrUnsupported, "host data", "a %s TEE has no launch-configuration field that binds a manifest", c.TEE).
			WithFix("run the workload in an SEV-SNP or TDX TEE")
	}
	if tail := hd[len(d):]; !isZero(tail) {
		return d, attest.Errorf(attest.ErrBinding, "host data", "MRCONFIGID bytes 32 to 47 are %x, expected zero after the manifest digest", tail)
	}
	copy(d[:], hd)
	return d, nil
}

// CheckManifest returns nil when claims bind the manifest digest want,
// and otherwise an attest.ErrBinding error that names the bound digest
// and the expected one.
func CheckManifest(c *attest.Claims, want Digest) error {
	got, err := BoundDigest(c)
	if err != nil {
		return err
	}
	if got != want {
		return attest.Errorf(attest.ErrBinding, "manifest digest",
			"the workload is bound to manifest %s, but this party agreed to manifest %s", got, want).
			WithFix("compare the manifest files: every party and the workload must use the same manifest")
	}
	return nil
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
