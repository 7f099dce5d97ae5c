// Package snp verifies AMD SEV-SNP attestation reports and emulates an
// SEV-SNP guest for development.
//
// The Verifier (registered as "snp") parses ATTESTATION_REPORT versions 2
// to 5, version 4 by the layout of version 3 and the others each by its
// own, and checks:
//
//   - the report signature (ECDSA P-384 with SHA-384 over bytes 0x000 to
//     0x29F) under the endorsement key that SIGNING_KEY names: a VCEK, or a
//     VLEK, and never one for the other;
//   - the chain VCEK → ASK → ARK or VLEK → ASVK → ARK: every signature
//     (RSASSA-PSS with SHA-384) and every validity window at the
//     verification time. The roots are AMD's ARKs for Milan, Genoa and
//     Turin (embedded, pinned by SHA-256) or the caller's, as attest.Roots
//     selects them;
//   - the product of the certificate against the report's CPUID (version 3
//     and later), the certificate's TCB extensions against REPORTED_TCB,
//     and a VCEK's hwid against CHIP_ID unless the platform masks CHIP_ID
//     to zeros (MASK_CHIP_ID);
//   - the guest policy's ABI_MAJOR.ABI_MINOR, the minimum firmware ABI the
//     guest may run on, against the running firmware's CURRENT_MAJOR and
//     CURRENT_MINOR (check policy-abi). COMMITTED_MAJOR and COMMITTED_MINOR
//     may be older, as they are while the host runs provisional firmware;
//   - the caller's nonce (attest.Options.Nonce), when given, as the start of
//     REPORT_DATA, since SEV-SNP has no other field for it;
//   - the AMD CRLs when the collateral has them. Without the ARK's CRL,
//     revocation is recorded as not checked, not required, because AMD's
//     KDS CRLs are rarely available offline.
//
// The report's VMPL is the claims attribute vmpl, which the verifier does
// not check. appraise.Options.MaxVMPL sets the highest accepted VMPL.
//
// Collateral comes from attest.Options.Collateral and from the certificate
// table of an extended report (Evidence.Aux, as configfs-tsm's auxblob
// delivers it). The verifier caches verified chains by certificate
// fingerprints and their common validity window, so a repeated verification
// costs about one ECDSA P-384 verification.
//
// The package parses reports and KDS certificate extensions itself rather
// than through go-sev-guest's abi and kds packages (v0.15.0). Those read the
// version 5 fields from every version and do not know Turin's TCB layout,
// FMC extension or 8-byte hwid. Their certificate-table parser also lets an
// offset wrap around. The package uses go-sev-guest for AMD's published
// certificates (verify/trust) and the /dev/sev-guest interface (client),
// and go-configfs-tsm for configfs-tsm.
//
// Emulator produces real version 3 reports signed by a development chain
// whose certificates carry the organization attest.EmulatedOrganization.
// The verifier labels them emulated and trusts them only when the
// development ARK is passed in attest.Options.TrustAnchors.
package snp
