package ear

import (
	"github.com/cloister-dev/cloister/appraise"
)

// Profile is the eat_profile of every token this package issues, the EAR
// profile of draft-ietf-rats-ear.
const Profile = "tag:github.com,2023:veraison/ear"

// Status is an appraisal's ear.status.
type Status string

// The four tiers of draft-ietf-rats-ar4si.
const (
	StatusNone            Status = "none"
	StatusAffirming       Status = "affirming"
	StatusWarning         Status = "warning"
	StatusContraindicated Status = "contraindicated"
)

// Result is the claim set of an EAR token.
type Result struct {
	Profile  string `json:"eat_profile"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	Issuer   string `json:"iss,omitempty"`
	// ID is a unique token identifier (jti), also written to the audit
	// log.
	ID string `json:"jti,omitempty"`
	// Nonce is the freshness value the evidence bound (eat_nonce).
	Nonce      string     `json:"eat_nonce,omitempty"`
	VerifierID VerifierID `json:"ear.verifier-id"`
	// Submods holds one appraisal per appraised piece of evidence, keyed
	// cpu0 for the primary TEE.
	Submods map[string]*Appraisal `json:"submods"`
}

// VerifierID names the software that produced the result.
type VerifierID struct {
	Developer string `json:"developer"`
	Build     string `json:"build"`
}

// Appraisal is the result for one piece of evidence.
type Appraisal struct {
	Status      Status       `json:"ear.status"`
	TrustVector *TrustVector `json:"ear.trustworthiness-vector,omitempty"`
	// PolicyID names the appraisal policy and its version (digest).
	PolicyID string `json:"ear.appraisal-policy-id,omitempty"`
	// AnnotatedEvidence holds the verified claims, under the TEE's name,
	// and the runtime data the evidence bound.
	AnnotatedEvidence map[string]any `json:"ear.veraison.annotated-evidence,omitempty"`
	// KeyClaims repeats the claims relying parties check most often.
	KeyClaims *KeyClaims `json:"cloister.key-claims,omitempty"`
	// Digests identify the evidence, collateral and policy used, so that
	// the appraisal can be reproduced.
	Digests *Digests `json:"cloister.digests,omitempty"`
	// Reasons lists every rule the evidence failed, empty when affirming.
	Reasons []appraise.Reason `json:"cloister.reasons,omitempty"`
}

// KeyClaims are the verified claims a relying party checks most often.
type KeyClaims struct {
	TEE         string `json:"tee"`
	Emulated    bool   `json:"emulated"`
	Measurement string `json:"measurement,omitempty"`
	ReportData  string `json:"report_data,omitempty"`
	HostData    string `json:"host_data,omitempty"`
	TCBStatus   string `json:"tcb_status,omitempty"`
	Debug       bool   `json:"debug"`
}

// Digests are hex SHA-256 digests of an appraisal's inputs.
type Digests struct {
	Evidence   string `json:"evidence"`
	Collateral string `json:"collateral,omitempty"`
	Policy     string `json:"policy"`
}

// TrustVector is the AR4SI trustworthiness vector. Values are the small
// integers of draft-ietf-rats-ar4si: 0 no claim, 2-31 affirming, 32-95
// warning, 96-127 contraindicated.
type TrustVector struct {
	InstanceIdentity int `json:"instance-identity"`
	Configuration    int `json:"configuration"`
	Executables      int `json:"executables"`
	FileSystem       int `json:"file-system"`
	Hardware         int `json:"hardware"`
	RuntimeOpaque    int `json:"runtime-opaque"`
	StorageOpaque    int `json:"storage-opaque"`
	SourcedData      int `json:"sourced-data"`
}

// AR4SI values used by TrustVectorFor, with their meaning in
// draft-ietf-rats-ar4si section 2.3.
const (
	// instance-identity
	TrustworthyInstance   = 2
	UntrustworthyInstance = 96
	// configuration
	ApprovedConfig      = 2
	UnsupportableConfig = 96
	// executables
	ApprovedBoot           = 3
	ContraindicatedRuntime = 96
	// hardware
	GenuineHardware         = 2
	ContraindicatedHardware = 96
	UnrecognizedHardware    = 97
	// runtime-opaque
	EncryptedMemory = 2
	VisibleMemory   = 96
)

// TrustVectorFor derives the trustworthiness vector from an appraisal's
// reasons. A clean appraisal gives a trustworthy instance, approved
// configuration, approved boot executables, genuine hardware and encrypted
// memory. Each failing rule lowers the component it concerns to a
// contraindicated value. A rule this package does not know lowers
// configuration, so that no reason can leave the status affirming.
func TrustVectorFor(reasons []appraise.Reason) TrustVector {
	tv := TrustVector{
		InstanceIdentity: TrustworthyInstance,
		Configuration:    ApprovedConfig,
		Executables:      ApprovedBoot,
		Hardware:         GenuineHardware,
		RuntimeOpaque:    EncryptedMemory,
	}
	for _, r := range reasons {
		switch r.Rule {
		case "emulated", "test-key":
			tv.Hardware = max(tv.Hardware, UnrecognizedHardware)
		case "tcb-status", "min-tcb":
			tv.Hardware = max(tv.Hardware, ContraindicatedHardware)
		case "debug":
			tv.RuntimeOpaque = VisibleMemory
		case "measurement", "reference-value":
			tv.Executables = ContraindicatedRuntime
		case "report-data", "chip-id", "required-check", "failed-check":
			tv.InstanceIdentity = UntrustworthyInstance
		default:
			tv.Configuration = UnsupportableConfig
		}
	}
	return tv
}

// Status returns the tier of the worst component: contraindicated when any
// is 96 or more, warning when any is 32 or more, none when all are 0 or 1,
// affirming otherwise.
func (tv TrustVector) Status() Status {
	worst, any := 0, false
	for _, v := range []int{tv.InstanceIdentity, tv.Configuration, tv.Executables, tv.FileSystem,
		tv.Hardware, tv.RuntimeOpaque, tv.StorageOpaque, tv.SourcedData} {
		if v < 0 {
			// Negative values are reserved for private use; treat them as
			// the worst tier rather than guess.
			return StatusContraindicated
		}
		worst = max(worst, v)
		if v >= 2 {
			any = true
		}
	}
	switch {
	case worst >= 96:
		return StatusContraindicated
	case worst >= 32:
		return StatusWarning
	case !any:
		return StatusNone
	}
	return StatusAffirming
}
