package attest

import (
	"crypto/sha256"
	"crypto/x509"
	"time"
)

// TEE names a kind of trusted execution environment or attestation service.
type TEE string

// The TEEs that Cloister verifies. A TEE package may add its own.
const (
	TEESNP       TEE = "snp"
	TEETDX       TEE = "tdx"
	TEESGX       TEE = "sgx"
	TEENitro     TEE = "nitro"
	TEETPM       TEE = "tpm"
	TEEAzureVTPM TEE = "azure-vtpm"
	TEENVGPU     TEE = "nvidia-gpu"
	TEEPSA       TEE = "psa"
	TEECCA       TEE = "cca"
	TEEGCPToken  TEE = "gcp-token"
	TEEMAAToken  TEE = "maa-token"
	TEEITAToken  TEE = "ita-token"
	// TEEComposite is the TEE of composite evidence (tee/composite): a CPU
	// report with NVIDIA GPUs, whose claims are the CPU's, with the CPU's
	// TEE in the attribute cpu_tee.
	TEEComposite TEE = "composite"
)

// KnownTEEs returns the TEEs named in this package except TEEComposite, in
// a fixed order. Collateral scopes and directories use these names, and
// composite evidence has no collateral of its own because its parts use
// theirs.
func KnownTEEs() []TEE {
	return []TEE{TEESNP, TEETDX, TEESGX, TEENitro, TEETPM, TEEAzureVTPM, TEENVGPU, TEEPSA, TEECCA,
		TEEGCPToken, TEEMAAToken, TEEITAToken}
}

// Claims is what a Verifier proved about one piece of evidence. Fields that
// do not apply to a TEE stay empty. Verify returns Claims only for evidence
// whose signatures and chain verified. When a later check fails, it returns
// the Claims together with the error, so that a caller can show what was
// proven and what was not.
type Claims struct {
	TEE TEE `json:"tee"`
	// Product is the hardware generation or platform, as the vendor names
	// it (Milan, Genoa, Turin; Sapphire Rapids; Hopper), taken from signed
	// data such as the endorsement certificate, never guessed.
	Product string `json:"product,omitempty"`
	// Emulated is true when a locally generated development root signed the
	// evidence. Such evidence proves format and binding, never hardware.
	Emulated bool `json:"emulated"`
	// TrustAnchor is the root certificate or key that the evidence chains to.
	TrustAnchor TrustAnchorRef `json:"trust_anchor"`

	// Measurement is the primary launch measurement: SEV-SNP MEASUREMENT,
	// SGX MRENCLAVE, TDX MRTD, Nitro PCR0.
	Measurement Hex `json:"measurement,omitempty"`
	// Measurements holds every named measurement, keyed by the
	// specification's lowercase name (mrsigner, rtmr0, pcr8, ...).
	Measurements map[string]Hex `json:"measurements,omitempty"`
	// ReportData is the caller-chosen data bound into the evidence (64
	// bytes for SNP, SGX and TDX).
	ReportData Hex `json:"report_data,omitempty"`
	// Nonce is the freshness value carried by evidence that has one apart
	// from the report data (Nitro, TPM extraData, tokens).
	Nonce Hex `json:"nonce,omitempty"`
	// HostData is data the host or launcher bound at launch (SEV-SNP
	// HOST_DATA, TDX MRCONFIGID).
	HostData Hex `json:"host_data,omitempty"`

	// Debug is true when the TEE allows a debugger to read its memory.
	Debug bool `json:"debug"`
	// TCB is the platform's trusted computing base as the vendor names it.
	TCB TCB `json:"tcb"`
	// ChipID identifies the physical platform when the TEE reports one.
	ChipID Hex `json:"chip_id,omitempty"`
	// Platform holds other identity values (fmspc, pce_id, cspid, module_id).
	Platform map[string]string `json:"platform,omitempty"`
	// SigningKey names the key type that signed the evidence: VCEK or VLEK
	// for SEV-SNP, PCK for DCAP, AK for TPM.
	SigningKey string `json:"signing_key,omitempty"`
	// Attributes holds further TEE-specific claims (guest policy bits,
	// VMPL, XFAM, SVNs, token claims).
	Attributes map[string]any `json:"attributes,omitempty"`

	// Chain lists the certificates from the signing key up to the root.
	Chain []CertInfo `json:"chain,omitempty"`
	// Collateral lists the collateral items the verification used.
	Collateral []CollateralRef `json:"collateral,omitempty"`
	// VerifiedAt is the verification time the checks used.
	VerifiedAt time.Time `json:"verified_at"`
	// Checks lists each check with its result, including the checks that
	// could not run, so that nothing unchecked passes silently.
	Checks []Check `json:"checks"`
	// Warnings are facts a reader should know that do not reject.
	Warnings []string `json:"warnings,omitempty"`
}

// TCB describes the trusted computing base that produced the evidence.
type TCB struct {
	// Status is the vendor's verdict on the TCB (Intel's closed set:
	// UpToDate, SWHardeningNeeded, ConfigurationNeeded,
	// ConfigurationAndSWHardeningNeeded, OutOfDate,
	// OutOfDateConfigurationNeeded, Revoked, NoMatchingTcbLevel,
	// NotDetermined). It is empty for TEEs without one, such as SEV-SNP.
	Status string `json:"status,omitempty"`
	// Components are the security version numbers, in the vendor's order
	// and names (bootloader, tee, snp, microcode; sgx_comp01, pce_svn, ...).
	Components []TCBComponent `json:"components,omitempty"`
	// Values holds whole TCB values as the vendor prints them
	// (reported_tcb, current_tcb, launch_tcb, committed_tcb).
	Values map[string]string `json:"values,omitempty"`
	// AdvisoryIDs are the vendor advisories of the matched TCB levels.
	AdvisoryIDs []string `json:"advisory_ids,omitempty"`
	// Date is the TCB date of the matched level (Intel tcbDate).
	Date *time.Time `json:"date,omitempty"`
	// RelaunchAdvised reports Intel's "TD relaunch advised" outcome: the
	// TD was launched before a TD-preserving update of its TDX module, and
	// the module now running meets the latest TCB level. Status keeps the
	// TD's launch-time status, because the running TD is still the one
	// launched on the old module. Relaunching it clears the status without
	// a firmware update.
	RelaunchAdvised bool `json:"relaunch_advised,omitempty"`
}

// Component returns the value of the named component and whether it exists.
func (t TCB) Component(name string) (uint64, bool) {
	for _, c := range t.Components {
		if c.Name == name {
			return c.Value, true
		}
	}
	return 0, false
}

// TCBComponent is one security version number of a TCB.
type TCBComponent struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// The TCB statuses Intel defines, plus the two outcomes Cloister adds when no
// status can be derived.
const (
	TCBUpToDate                          = "UpToDate"
	TCBSWHardeningNeeded                 = "SWHardeningNeeded"
	TCBConfigurationNeeded               = "ConfigurationNeeded"
	TCBConfigurationAndSWHardeningNeeded = "ConfigurationAndSWHardeningNeeded"
	TCBOutOfDate                         = "OutOfDate"
	TCBOutOfDateConfigurationNeeded      = "OutOfDateConfigurationNeeded"
	TCBRevoked                           = "Revoked"
	TCBNoMatchingLevel                   = "NoMatchingTcbLevel"
	TCBNotDetermined                     = "NotDetermined"
)

// IntelTCBLevelStatuses are the statuses that a TCB level of Intel's TCB
// Info or QE Identity may have. The DCAP verifier and the Intel Trust
// Authority token mapping accept no others.
var IntelTCBLevelStatuses = []string{
	TCBUpToDate, TCBSWHardeningNeeded, TCBConfigurationNeeded,
	TCBConfigurationAndSWHardeningNeeded, TCBOutOfDate,
	TCBOutOfDateConfigurationNeeded, TCBRevoked,
}

// AnchorKind is the kind of trust anchor that verified the evidence.
type AnchorKind string

const (
	// AnchorVendorRoot is a vendor root embedded in Cloister and pinned by
	// fingerprint (AMD ARK, Intel SGX Root CA, AWS Nitro Root G1, ...).
	AnchorVendorRoot AnchorKind = "vendor-root"
	// AnchorCallerRoot is a root certificate the caller supplied that is
	// not one of the embedded vendor roots.
	AnchorCallerRoot AnchorKind = "caller-root"
	// AnchorCallerKey is a bare public key or JWKS the caller supplied
	// (PSA IAK, CCA CPAK, pinned TPM AK, token signing keys).
	AnchorCallerKey AnchorKind = "caller-key"
	// AnchorEmulatedRoot is a development root that Cloister generated for
	// an emulated TEE.
	AnchorEmulatedRoot AnchorKind = "emulated-root"
)

// TrustAnchorRef names the trust anchor that verified the evidence.
type TrustAnchorRef struct {
	Kind AnchorKind `json:"kind"`
	// Name is a readable name: the root's subject or the key's source.
	Name string `json:"name"`
	// SHA256 is the fingerprint of the certificate or SubjectPublicKeyInfo.
	SHA256 Hex `json:"sha256,omitempty"`
	// TestKey is true when the anchor is a key published for testing
	// (for example the TF-M example IAK): it proves format, not hardware.
	TestKey bool `json:"test_key,omitempty"`
}

// CertInfo summarises one certificate of a verified chain.
type CertInfo struct {
	// Role is the certificate's place in the chain (VCEK, ASK, ARK, PCK
	// leaf, PCK CA, root).
	Role      string    `json:"role"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    Hex       `json:"sha256"`
}

// NewCertInfo summarises cert under the given role.
func NewCertInfo(role string, cert *x509.Certificate) CertInfo {
	sum := sha256.Sum256(cert.Raw)
	return CertInfo{
		Role:      role,
		Subject:   cert.Subject.String(),
		Issuer:    cert.Issuer.String(),
		Serial:    cert.SerialNumber.Text(16),
		NotBefore: cert.NotBefore.UTC(),
		NotAfter:  cert.NotAfter.UTC(),
		SHA256:    sum[:],
	}
}

// CollateralRef names one collateral item a verification used, with its
// digest and validity, so that the result can be re-checked later with the
// same inputs.
type CollateralRef struct {
	// Kind is the item's type (crl, tcb_info, qe_identity, certificate).
	Kind string `json:"kind"`
	// Name identifies the item (issuer CN, FMSPC, file name).
	Name   string `json:"name"`
	SHA256 Hex    `json:"sha256"`
	// IssuedAt and NextUpdate bound the item's validity (thisUpdate or
	// issueDate, nextUpdate or notAfter).
	IssuedAt   time.Time `json:"issued_at"`
	NextUpdate time.Time `json:"next_update"`
}

// CheckResult is the outcome of one check.
type CheckResult string

const (
	CheckPassed     CheckResult = "passed"
	CheckFailed     CheckResult = "failed"
	CheckNotChecked CheckResult = "not-checked"
)

// Check records one verification step: its name, its result and, for a
// failure or a skipped check, why. A Required check that did not run makes
// the default appraisal reject the evidence.
type Check struct {
	Name     string      `json:"name"`
	Result   CheckResult `json:"result"`
	Required bool        `json:"required,omitempty"`
	// Collateral marks a required check that did not run because the
	// collateral it needs (TCB Info, QE Identity, a CRL) was not supplied,
	// which the appraisal may waive when asked to accept an undetermined
	// TCB.
	Collateral bool   `json:"collateral,omitempty"`
	Detail     string `json:"detail,omitempty"`
}

// Pass records a passed check.
func (c *Claims) Pass(name string) {
	c.Checks = append(c.Checks, Check{Name: name, Result: CheckPassed})
}

// Fail records a failed check.
func (c *Claims) Fail(name, detail string) {
	c.Checks = append(c.Checks, Check{Name: name, Result: CheckFailed, Detail: detail})
}

// Skip records a check that could not run. When required is true, the
// default appraisal rejects the evidence until the caller supplies what the
// check needs or explicitly waives it.
func (c *Claims) Skip(name string, required bool, detail string) {
	c.Checks = append(c.Checks, Check{Name: name, Result: CheckNotChecked, Required: required, Detail: detail})
}

// SkipCollateral records a required check that could not run because its
// collateral is missing.
func (c *Claims) SkipCollateral(name, detail string) {
	c.Checks = append(c.Checks, Check{Name: name, Result: CheckNotChecked, Required: true, Collateral: true, Detail: detail})
}

// FindCheck returns the first recorded check named name, and whether one
// was recorded.
func (c *Claims) FindCheck(name string) (Check, bool) {
	for _, ch := range c.Checks {
		if ch.Name == name {
			return ch, true
		}
	}
	return Check{}, false
}

// SetMeasurement stores a named measurement, creating the map on first use.
func (c *Claims) SetMeasurement(name string, value []byte) {
	if c.Measurements == nil {
		c.Measurements = map[string]Hex{}
	}
	c.Measurements[name] = Hex(value)
}

// SetAttribute stores a TEE-specific claim, creating the map on first use.
func (c *Claims) SetAttribute(name string, value any) {
	if c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	c.Attributes[name] = value
}

// SetPlatform stores a platform identity value, creating the map on first use.
func (c *Claims) SetPlatform(name, value string) {
	if c.Platform == nil {
		c.Platform = map[string]string{}
	}
	c.Platform[name] = value
}
