package snp

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// newClaims fills in the claims of a report whose signature and chain
// verified. The product and the TCB layout come from the certificate.
func newClaims(r *Report, c *chain, at time.Time) *attest.Claims {
	product := c.leaf.Product
	claims := &attest.Claims{
		TEE:         attest.TEESNP,
		Product:     product,
		Emulated:    attest.IsEmulated(c.root),
		TrustAnchor: attest.DescribeRoot(c.root, embeddedARKs),
		Measurement: attest.Hex(r.Measurement[:]),
		ReportData:  attest.Hex(r.ReportData[:]),
		HostData:    attest.Hex(r.HostData[:]),
		ChipID:      attest.Hex(r.ChipID[:]),
		Debug:       r.Debug(),
		SigningKey:  c.leaf.Kind,
		VerifiedAt:  at.UTC(),
		TCB: attest.TCB{
			Components: tcbComponents(product, r.ReportedTCB),
			Values: map[string]string{
				"reported_tcb":  fmt.Sprintf("0x%016x", r.ReportedTCB),
				"current_tcb":   fmt.Sprintf("0x%016x", r.CurrentTCB),
				"committed_tcb": fmt.Sprintf("0x%016x", r.CommittedTCB),
				"launch_tcb":    fmt.Sprintf("0x%016x", r.LaunchTCB),
			},
		},
		Chain: []attest.CertInfo{
			attest.NewCertInfo(c.leaf.Kind, c.leaf.Cert),
			attest.NewCertInfo(intermediateRole(c.leaf.Kind), c.intermediate),
			attest.NewCertInfo("ARK", c.root),
		},
	}
	claims.SetPlatform("product_name", c.leaf.ProductName)
	if c.leaf.CSPID != "" {
		claims.SetPlatform("csp_id", c.leaf.CSPID)
	}
	for name, value := range reportAttributes(r) {
		claims.SetAttribute(name, value)
	}
	if claims.Emulated {
		claims.Warnings = append(claims.Warnings, "EMULATED: the report is signed by a development VCEK generated on a machine without SEV-SNP; it proves the format and the report data, not hardware")
	}
	return claims
}

// reportAttributes returns the report fields that have no place of their
// own in Claims, under the specification's names in lower case.
func reportAttributes(r *Report) map[string]any {
	a := map[string]any{
		"version":            r.Version,
		"guest_svn":          r.GuestSVN,
		"policy":             fmt.Sprintf("0x%x", r.Policy),
		"vmpl":               r.VMPL,
		"family_id":          hex.EncodeToString(r.FamilyID[:]),
		"image_id":           hex.EncodeToString(r.ImageID[:]),
		"id_key_digest":      hex.EncodeToString(r.IDKeyDigest[:]),
		"author_key_digest":  hex.EncodeToString(r.AuthorKeyDigest[:]),
		"report_id":          hex.EncodeToString(r.ReportID[:]),
		"report_id_ma":       hex.EncodeToString(r.ReportIDMA[:]),
		"platform_info":      fmt.Sprintf("0x%x", r.PlatformInfo),
		"author_key_en":      r.AuthorKeyEnabled(),
		"mask_chip_key":      r.MaskChipKey(),
		"current_firmware":   fmt.Sprintf("%d.%d.%d", r.CurrentMajor, r.CurrentMinor, r.CurrentBuild),
		"committed_firmware": fmt.Sprintf("%d.%d.%d", r.CommittedMajor, r.CommittedMinor, r.CommittedBuild),
	}
	if r.HasCPUID {
		a["cpuid_fms"] = fmt.Sprintf("family 0x%02x model 0x%02x stepping 0x%x", r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping)
	}
	if r.HasMitigationVectors {
		a["launch_mit_vector"] = fmt.Sprintf("0x%016x", r.LaunchMitVector)
		a["current_mit_vector"] = fmt.Sprintf("0x%016x", r.CurrentMitVector)
	}
	return a
}

// collateralRefs lists the certificates of the chain and the CRLs that
// the verification used, with their digests and validity.
func collateralRefs(c *chain, crls []*x509.RevocationList) []attest.CollateralRef {
	var refs []attest.CollateralRef
	for _, cert := range []*x509.Certificate{c.leaf.Cert, c.intermediate, c.root} {
		sum := sha256.Sum256(cert.Raw)
		refs = append(refs, attest.CollateralRef{Kind: "certificate", Name: cert.Subject.CommonName, SHA256: sum[:],
			IssuedAt: cert.NotBefore.UTC(), NextUpdate: cert.NotAfter.UTC()})
	}
	for _, crl := range crls {
		sum := sha256.Sum256(crl.Raw)
		refs = append(refs, attest.CollateralRef{Kind: "crl", Name: crl.Issuer.CommonName, SHA256: sum[:],
			IssuedAt: crl.ThisUpdate.UTC(), NextUpdate: crl.NextUpdate.UTC()})
	}
	return refs
}
