package nvgpu

import (
	"crypto/x509"
	"strings"

	"github.com/cloister-dev/cloister/attest"
)

// checkDeviceKeyUsage checks the key usage of a verified device chain,
// leaf first. attest.VerifyChain checks no key usage of the leaf. Building
// the chain, crypto/x509 requires of every issuer CA:TRUE (except in a
// version 1 certificate) and keyCertSign when it has a keyUsage
// extension, but it accepts an issuer without the extension. The GH100
// device chains of real evidence carry a critical keyUsage extension in
// every certificate. The leaf, whose key signs the SPDM measurements, has
// digitalSignature. Every issuer up to the Device Identity CA has CA:TRUE
// and keyCertSign, as RFC 5280 section 4.2.1.3 requires of a CA. A leaf
// that may not sign, or an issuer that is not marked to issue, is rejected.
func checkDeviceKeyUsage(chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return nil
	}
	leaf := chain[0]
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return attest.Errorf(attest.ErrChain, "device certificate key usage",
			"the device leaf certificate %q does not allow digitalSignature, so its key may not sign attestation reports", leaf.Subject.String()).
			WithValues(keyUsageNames(leaf.KeyUsage), "digitalSignature").
			WithFix("pass the certificate chain that the GPU returned with this report (nvmlDeviceGetConfComputeGpuCertificate), leaf first")
	}
	for _, issuer := range chain[1:] {
		if !issuer.BasicConstraintsValid || !issuer.IsCA {
			return attest.Errorf(attest.ErrChain, "device certificate basic constraints",
				"the issuer certificate %q is not a CA (basicConstraints cA is not true), so it may not issue certificates", issuer.Subject.String()).
				WithFix("pass the device certificate chain that the GPU returned, and the NVIDIA Device Identity CA as its root")
		}
		if issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
			return attest.Errorf(attest.ErrChain, "device certificate key usage",
				"the issuer certificate %q does not allow keyCertSign, so it may not issue certificates", issuer.Subject.String()).
				WithValues(keyUsageNames(issuer.KeyUsage), "keyCertSign").
				WithFix("pass the device certificate chain that the GPU returned, and the NVIDIA Device Identity CA as its root")
		}
	}
	return nil
}

// keyUsageNames lists the key usage bits by their RFC 5280 names, or
// returns "none" when no bit is set.
func keyUsageNames(u x509.KeyUsage) string {
	names := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "digitalSignature"},
		{x509.KeyUsageContentCommitment, "nonRepudiation"},
		{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
		{x509.KeyUsageDataEncipherment, "dataEncipherment"},
		{x509.KeyUsageKeyAgreement, "keyAgreement"},
		{x509.KeyUsageCertSign, "keyCertSign"},
		{x509.KeyUsageCRLSign, "cRLSign"},
		{x509.KeyUsageEncipherOnly, "encipherOnly"},
		{x509.KeyUsageDecipherOnly, "decipherOnly"},
	}
	var out []string
	for _, n := range names {
		if u&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}
