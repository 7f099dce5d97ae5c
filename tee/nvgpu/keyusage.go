package nvgpu

import (
	"crypto/x509"
	"strings"

	"github.com/cloister-dev/cloister/attest"
)

// chainUsage names a certificate chain in the errors of checkChainKeyUsage.
type chainUsage struct {
	// usageField and constraintsField are the attest.Error fields of a
	// keyUsage error and of a basicConstraints error.
	usageField, constraintsField string
	// leafReason is the format of the reason of a leaf error, with the
	// leaf's subject as its one argument.
	leafReason string
	// leafFix and issuerFix are the fixes of the two kinds of error.
	leafFix, issuerFix string
}

var (
	deviceChainUsage = chainUsage{
		usageField:       "device certificate key usage",
		constraintsField: "device certificate basic constraints",
		leafReason:       "the device leaf certificate %q does not allow digitalSignature, so its key may not sign attestation reports",
		leafFix:          "pass the certificate chain that the GPU returned with this report (nvmlDeviceGetConfComputeGpuCertificate), leaf first",
		issuerFix:        "pass the device certificate chain that the GPU returned, and the NVIDIA Device Identity CA as its root",
	}
	rimChainUsage = chainUsage{
		usageField:       "Signature/KeyInfo/X509Data",
		constraintsField: "Signature/KeyInfo/X509Data",
		leafReason:       "the RIM signing certificate %q does not allow digitalSignature, so its key may not sign RIMs",
		leafFix:          "pass the RIM as NVIDIA's RIM service publishes it, or remove it from the collateral",
		issuerFix:        "pass the RIM as NVIDIA's RIM service publishes it, with the NVIDIA CoRIM signing Root CA as the RIM trust anchor",
	}
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
	return checkChainKeyUsage(chain, deviceChainUsage)
}

// checkRIMKeyUsage checks the key usage of a verified RIM signing chain,
// leaf first, by the rules of checkDeviceKeyUsage. Every RIM in NVIDIA's
// nvtrust repository (guest_tools/rims and the verifier's samples) carries
// a critical keyUsage extension in every certificate. The "HCC RIM L4
// Signer" leaf has digitalSignature. Both intermediate CAs and the CoRIM
// signing Root CA have CA:TRUE, keyCertSign and cRLSign. nvtrust's verifier
// builds the chain with OpenSSL without a purpose, which rejects an issuer
// that is not a CA or whose keyUsage lacks keyCertSign. OpenSSL accepts a
// leaf without the keyUsage extension, but this check rejects it, because
// no RIM that NVIDIA published lacks it.
func checkRIMKeyUsage(chain []*x509.Certificate) error {
	return checkChainKeyUsage(chain, rimChainUsage)
}

// checkChainKeyUsage requires digitalSignature in the keyUsage of the leaf,
// chain[0], and CA:TRUE with keyCertSign in every other certificate. A
// certificate without a keyUsage extension has none of them.
func checkChainKeyUsage(chain []*x509.Certificate, usage chainUsage) error {
	if len(chain) == 0 {
		return nil
	}
	leaf := chain[0]
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return attest.Errorf(attest.ErrChain, usage.usageField, usage.leafReason, leaf.Subject.String()).
			WithValues(keyUsageNames(leaf.KeyUsage), "digitalSignature").
			WithFix(usage.leafFix)
	}
	for _, issuer := range chain[1:] {
		if !issuer.BasicConstraintsValid || !issuer.IsCA {
			return attest.Errorf(attest.ErrChain, usage.constraintsField,
				"the issuer certificate %q is not a CA (basicConstraints cA is not true), so it may not issue certificates", issuer.Subject.String()).
				WithFix(usage.issuerFix)
		}
		if issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
			return attest.Errorf(attest.ErrChain, usage.usageField,
				"the issuer certificate %q does not allow keyCertSign, so it may not issue certificates", issuer.Subject.String()).
				WithValues(keyUsageNames(issuer.KeyUsage), "keyCertSign").
				WithFix(usage.issuerFix)
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
