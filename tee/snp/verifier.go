package snp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

func init() { attest.Register(&Verifier{}) }

// Verifier verifies SEV-SNP attestation reports. Its zero value is ready to
// use and safe for concurrent use; it caches verified certificate chains.
type Verifier struct {
	cache attest.ChainCache
	roots rootsCache
}

// Name returns "snp".
func (*Verifier) Name() string { return string(attest.TEESNP) }

// Detect reports whether data has the size of an ATTESTATION_REPORT, a
// version AMD has defined (2 to 5) and SIGNATURE_ALGO 1 (ECDSA P-384 with
// SHA-384).
func (*Verifier) Detect(data []byte) bool {
	if len(data) != ReportSize {
		return false
	}
	version, _ := reportVersion(data)
	return version >= 2 && version <= 5 && data[0x34] == sigAlgoECDSAP384SHA384 &&
		data[0x35] == 0 && data[0x36] == 0 && data[0x37] == 0
}

// Verify checks an SEV-SNP report. It parses the layout, picks the
// endorsement certificate (VCEK or VLEK, as SIGNING_KEY names it) and
// verifies the report signature under it. It verifies the chain to an AMD
// ARK (or a development ARK passed in TrustAnchors) with every validity
// window at opts.Time(), applies the CRLs the collateral has, and requires
// the certificate's TCB and chip ID to match the report. Collateral comes
// from opts.Collateral and from ev.Aux, a certificate table as an extended
// report request returns it.
func (v *Verifier) Verify(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	report, err := ParseReport(ev.Data)
	if err != nil {
		return nil, err
	}
	at := opts.Time()
	kind := report.SigningKeyName()
	if report.SigningKey() == signingKeyNone {
		return nil, attest.Errorf(attest.ErrSignature, "SIGNING_KEY", "the report is unsigned (SIGNING_KEY 7)").
			WithFix("request the report from the SEV-SNP firmware with a VCEK or VLEK signature")
	}
	if report.SigningKey() == signingKeyVCEK && report.MaskChipKey() {
		return nil, attest.Errorf(attest.ErrSignature, "MASK_CHIP_KEY", "SIGNING_KEY names the VCEK, but MASK_CHIP_KEY is set, so the firmware does not sign with the VCEK").
			WithValues(fmt.Sprintf("SIGNER_INFO 0x%08x", report.SignerInfo), "MASK_CHIP_KEY clear for a VCEK signature").
			WithFix("pass the report unmodified as the firmware produced it; a platform that masks the chip key signs with a VLEK or not at all")
	}
	reportProduct := ""
	if report.HasCPUID {
		reportProduct = productFromCPUID(report.CPUIDFamily, report.CPUIDModel)
	}

	q := collateral.Query{TEE: string(attest.TEESNP), At: at, Product: reportProduct, SigningKey: kind, ReportedTCB: report.ReportedTCB}
	if kind == "VCEK" && !report.ChipIDMasked() {
		q.ChipID = report.ChipID[:]
	}
	set, err := opts.CollateralFor(ctx, q)
	if err != nil {
		// A source that served nothing leaves the collateral missing, so
		// the error has that kind, with the source's failure as its cause.
		return nil, &attest.Error{Kind: attest.ErrCollateralMissing, Field: "collateral",
			Reason: "snp: the collateral source failed", Err: err,
			Fix: "check the AMD KDS address and the network, or pass the VCEK, ASK and ARK certificates with --collateral"}
	}
	certs, err := auxCertificates(ev.Aux)
	if err != nil {
		return nil, err
	}
	certs = append(certs, set.Certificates()...)

	leaf, err := selectEndorsement(report, certs, reportProduct)
	if err != nil {
		return nil, withSourceNotes(err, set.Unserved)
	}
	roots, err := v.roots.roots(ctx, opts, set, q)
	if err != nil {
		return nil, fmt.Errorf("snp: trust anchors: %w", err)
	}
	intermediates := append(append([]*x509.Certificate(nil), certs...), embeddedIntermediates...)
	c, err := v.verifyChain(leaf, intermediates, roots, at)
	if err != nil {
		return nil, withSourceNotes(err, set.Unserved)
	}

	claims := newClaims(report, c, at)
	claims.Pass("signature")
	claims.Pass("chain")
	switch {
	case reportProduct != "":
		claims.Pass("product-match")
	case report.HasCPUID:
		claims.Skip("product-match", false, fmt.Sprintf("CPUID family 0x%02x model 0x%02x is not Milan, Genoa or Turin, so the product is taken from the %s certificate alone", report.CPUIDFamily, report.CPUIDModel, kind))
	default:
		claims.Skip("product-match", false, fmt.Sprintf("a version %d report carries no CPUID, so the product is taken from the %s certificate alone (the signature binds the report to that chip)", report.Version, kind))
	}
	if err := checkPolicyABI(report, claims); err != nil {
		return claims, err
	}
	if err := checkNonce(report, opts.Nonce, claims); err != nil {
		return claims, err
	}
	if err := checkTCBMatch(report, leaf, claims); err != nil {
		return claims, err
	}
	if err := checkChipID(report, leaf, claims); err != nil {
		return claims, err
	}
	applied, err := checkRevocation(c, set.CRLs(), at)
	claims.Collateral = collateralRefs(c, applied)
	switch {
	case err != nil:
		claims.Fail("revocation", err.Error())
		return claims, err
	case !appliedCRLOf(c.root, applied):
		// AMD revokes ASKs and ASVKs through the ARK's CRL and replaces
		// VCEKs by TCB instead of revoking them, so an intermediate's CRL
		// alone leaves the revocation that matters unchecked.
		claims.Skip("revocation", false, fmt.Sprintf("no CRL issued by %s in the collateral, so the %s %s is not checked for revocation; AMD publishes that CRL at /%s/v1/%s/crl of its KDS",
			c.root.Subject.CommonName, intermediateRole(leaf.Kind), c.intermediate.Subject.CommonName, lowerKind(leaf.Kind), leaf.Product))
	default:
		claims.Pass("revocation")
	}
	return claims, nil
}

// withSourceNotes adds to a missing-collateral error the items that the
// online source requested and did not get, with the reason for each
// ("kds/...: not found upstream" for a 404 on an unknown chip ID or TCB).
// Other errors, and errors that already have a cause, are returned
// unchanged.
func withSourceNotes(err error, unserved []string) error {
	var ae *attest.Error
	if len(unserved) == 0 || !errors.As(err, &ae) || ae.Kind != attest.ErrCollateralMissing || ae.Err != nil {
		return err
	}
	withNotes := *ae
	withNotes.Err = fmt.Errorf("the online collateral source did not get %s", strings.Join(unserved, "; "))
	return &withNotes
}

// auxCertificates parses the certificates of an extended report's
// certificate table. Entries under other GUIDs than those of the VCEK,
// VLEK, ASK and ARK (such as go-sev-guest's extra platform information) are
// skipped unless they hold an X.509 certificate, and so are empty entries.
// A table that does not parse, or a VCEK, VLEK, ASK or ARK entry that holds
// no certificate or one of another kind than its GUID names, is an error.
func auxCertificates(aux []byte) ([]*x509.Certificate, error) {
	if len(aux) == 0 {
		return nil, nil
	}
	entries, err := parseCertTable(aux)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, e := range entries {
		want, known := guidCommonNames[e.GUID]
		cert, err := x509.ParseCertificate(e.Data)
		switch {
		case err != nil && known && len(e.Data) > 0:
			return nil, attest.Malformed("certificate table", fmt.Sprintf("the entry with GUID %s (%s) is %d bytes that are not an X.509 certificate", e.GUID, guidNames[e.GUID], len(e.Data)), err).
				WithFix("pass the extended report's certificate table unmodified, as the host returned it with the report")
		case err != nil:
			continue
		}
		if known && !want(cert.Subject.CommonName) {
			return nil, attest.Malformed("certificate table", fmt.Sprintf("the entry with GUID %s holds a certificate for %q, which is not the kind that GUID names", e.GUID, cert.Subject.CommonName), nil)
		}
		out = append(out, cert)
	}
	return out, nil
}

// guidNames names the certificate-table GUIDs that guidCommonNames checks.
var guidNames = map[[16]byte]string{guidVCEK: "VCEK", guidVLEK: "VLEK", guidASK: "ASK or ASVK", guidARK: "ARK"}

// guidCommonNames checks the subject common name of a certificate-table
// entry against its GUID. The ASK GUID also carries the ASVK.
var guidCommonNames = map[[16]byte]func(string) bool{
	guidVCEK: func(cn string) bool { return cn == "SEV-VCEK" },
	guidVLEK: func(cn string) bool { return cn == "SEV-VLEK" },
	guidASK:  func(cn string) bool { return strings.HasPrefix(cn, "SEV-") && cn != "SEV-VCEK" && cn != "SEV-VLEK" },
	guidARK:  func(cn string) bool { return strings.HasPrefix(cn, "ARK-") },
}

// selectEndorsement picks the certificate that signed the report among
// certs: one of the kind SIGNING_KEY names, of the report's product when the
// report states one, whose key verifies the signature.
func selectEndorsement(report *Report, certs []*x509.Certificate, reportProduct string) (*Endorsement, error) {
	kind := report.SigningKeyName()
	var candidates, otherKind []*Endorsement
	var parseErr error
	for _, cert := range certs {
		if cn := cert.Subject.CommonName; cn != "SEV-VCEK" && cn != "SEV-VLEK" {
			continue
		}
		e, err := parseEndorsement(cert)
		if err != nil {
			parseErr = err
			continue
		}
		if e.Kind != kind {
			otherKind = append(otherKind, e)
			continue
		}
		candidates = append(candidates, e)
	}
	if len(candidates) == 0 {
		switch {
		case len(otherKind) > 0:
			return nil, attest.Errorf(attest.ErrCollateralMissing, "SIGNING_KEY", "the report's SIGNING_KEY names the %s, but the collateral contains only a %s certificate, which must not verify a %s-signed report", kind, otherKind[0].Kind, kind).
				WithFix(fmt.Sprintf("pass the %s certificate of this platform with --collateral", kind))
		case parseErr != nil:
			return nil, parseErr
		}
		fix := fmt.Sprintf("pass the %s certificate with --collateral; AMD's KDS serves VCEKs by chip ID and REPORTED_TCB (/vcek/v1/<product>/<chip id>?blSPL=...)", kind)
		if kind == "VCEK" && report.ChipIDMasked() {
			fix = "CHIP_ID is all zeros because the platform masks it (MASK_CHIP_ID), so AMD's KDS cannot be asked for the VCEK; pass the VCEK with --collateral, or the extended report's certificate table that contains it"
		}
		return nil, attest.Errorf(attest.ErrCollateralMissing, kind, "no %s certificate in the collateral or in the report's certificate table", kind).
			WithFix(fix)
	}

	var lastErr error
	for _, e := range candidates {
		if reportProduct != "" && e.Product != reportProduct {
			lastErr = attest.Errorf(attest.ErrChain, "productName", "the %s certificate is for %s (productName %q), but the report's CPUID (family 0x%02x, model 0x%02x) is a %s processor",
				kind, e.Product, e.ProductName, report.CPUIDFamily, report.CPUIDModel, reportProduct).
				WithFix(fmt.Sprintf("pass the %s chain of a %s platform", kind, reportProduct))
			continue
		}
		if err := checkReportSignature(report, e); err != nil {
			lastErr = err
			continue
		}
		return e, nil
	}
	return nil, lastErr
}

// checkReportSignature verifies SIGNATURE, ECDSA P-384 over SHA-384 of
// bytes 0x000 to 0x29F, under the endorsement key.
func checkReportSignature(report *Report, e *Endorsement) error {
	digest := sha512.Sum384(report.SignedBytes())
	r := new(big.Int).SetBytes(report.SignatureR[:])
	s := new(big.Int).SetBytes(report.SignatureS[:])
	if !ecdsa.Verify(e.Key, digest[:], r, s) {
		return attest.Errorf(attest.ErrSignature, "SIGNATURE", "report signature invalid under the %s (subject %s, SHA-256 %s)", e.Kind, e.Cert.Subject.CommonName, fingerprint(e.Cert)).
			WithFix(fmt.Sprintf("the report was modified or another platform's %s was supplied; pass the unmodified report with the %s of the platform that produced it", e.Kind, e.Kind))
	}
	return nil
}

// checkTCBMatch compares the certified TCB with REPORTED_TCB, the TCB the
// firmware used to derive the VCEK. CURRENT_TCB may be newer and is never
// compared.
func checkTCBMatch(report *Report, e *Endorsement, claims *attest.Claims) error {
	if diff := e.reportedTCBMismatch(report.ReportedTCB); diff != "" {
		claims.Fail("tcb-match", diff)
		return attest.Errorf(attest.ErrChain, "REPORTED_TCB", "the %s certificate does not certify this report's TCB: %s", e.Kind, diff).
			WithValues(formatTCB(e.Product, report.ReportedTCB), formatTCB(e.Product, e.certifiedTCB())).
			WithFix(fmt.Sprintf("fetch the %s for REPORTED_TCB from AMD's KDS", e.Kind))
	}
	claims.Pass("tcb-match")
	return nil
}

// checkChipID compares a VCEK's hwid with CHIP_ID. Turin hwids are 8 bytes,
// and the rest of CHIP_ID must then be zero. An all-zero CHIP_ID is not
// compared: a platform configured with MASK_CHIP_ID writes zeros there and
// still signs with its VCEK, whose key is unique to the chip.
func checkChipID(report *Report, e *Endorsement, claims *attest.Claims) error {
	switch {
	case e.Kind == "VLEK":
		claims.Skip("chip-id-match", false, "a VLEK certifies a cloud provider's platforms, not one chip, so it carries no chip ID")
		return nil
	case report.ChipIDMasked():
		claims.Skip("chip-id-match", false, fmt.Sprintf("CHIP_ID is all zeros, as the platform's MASK_CHIP_ID setting writes it; the VCEK signature binds the report to the chip with hwid %s", hex.EncodeToString(e.HWID)))
		return nil
	}
	want := make([]byte, len(report.ChipID))
	copy(want, e.HWID)
	if !bytes.Equal(report.ChipID[:], want) {
		detail := fmt.Sprintf("CHIP_ID %s differs from the VCEK hwid %s", hex.EncodeToString(report.ChipID[:]), hex.EncodeToString(e.HWID))
		claims.Fail("chip-id-match", detail)
		return attest.Errorf(attest.ErrChain, "CHIP_ID", "the VCEK was issued for another chip").
			WithValues(hex.EncodeToString(report.ChipID[:]), hex.EncodeToString(e.HWID)).
			WithFix("pass the VCEK that AMD's KDS issued for this report's CHIP_ID")
	}
	claims.Pass("chip-id-match")
	return nil
}

// checkPolicyABI requires the running firmware's ABI version (CURRENT_MAJOR
// and CURRENT_MINOR) to be at least the guest policy's ABI_MAJOR.ABI_MINOR.
// The SEV-SNP firmware ABI specification (AMD publication 56860) defines
// those policy fields as the minimum ABI version required for the guest to
// run. A signed report that breaks the rule therefore comes from firmware
// that ran the guest against its owner's policy.
//
// NOTE: COMMITTED_MAJOR and COMMITTED_MINOR are not compared. A host may run
// provisional firmware that is newer than the committed one, and a guest
// launched on it satisfies its policy although the committed version is
// older. go-sev-guest's validate package (v0.15.0) compares the policy ABI
// only with the verifier's required policy, not with either firmware
// version.
func checkPolicyABI(report *Report, claims *attest.Claims) error {
	major, minor := report.PolicyABI()
	policy := uint16(major)<<8 | uint16(minor)
	current := uint16(report.CurrentMajor)<<8 | uint16(report.CurrentMinor)
	if current >= policy {
		claims.Pass("policy-abi")
		return nil
	}
	detail := fmt.Sprintf("the guest policy requires firmware ABI %d.%d or later, but the firmware that signed the report runs ABI %d.%d (CURRENT_MAJOR.CURRENT_MINOR; committed %d.%d)",
		major, minor, report.CurrentMajor, report.CurrentMinor, report.CommittedMajor, report.CommittedMinor)
	claims.Fail("policy-abi", detail)
	return attest.Errorf(attest.ErrMalformed, "POLICY", "%s, which the guest policy forbids", detail).
		WithValues(fmt.Sprintf("firmware ABI %d.%d", report.CurrentMajor, report.CurrentMinor), fmt.Sprintf(">= %d.%d", major, minor)).
		WithFix("do not trust this platform's firmware: attest on a platform whose SEV-SNP firmware enforces the guest policy, and report the firmware version to the platform operator")
}

// checkNonce requires REPORT_DATA to start with the caller's nonce, when
// there is one. SEV-SNP carries no freshness value apart from REPORT_DATA,
// so a guest that binds a nonce places it there.
func checkNonce(report *Report, nonce []byte, claims *attest.Claims) error {
	if len(nonce) == 0 {
		claims.Skip("nonce", false, "no expected nonce was given")
		return nil
	}
	if !bytes.HasPrefix(report.ReportData[:], nonce) {
		claims.Fail("nonce", "REPORT_DATA does not start with the nonce")
		return attest.Errorf(attest.ErrBinding, "REPORT_DATA", "report data does not start with the expected nonce").
			WithValues(hex.EncodeToString(report.ReportData[:]), hex.EncodeToString(nonce)).
			WithFix("request a fresh report with the nonce as report data; when the guest binds a hash of the nonce, compare that hash with --report-data instead of passing --nonce")
	}
	claims.Pass("nonce")
	return nil
}
