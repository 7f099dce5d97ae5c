package cca

import (
	"fmt"

	"github.com/cloister-dev/cloister/internal/cose"
	"github.com/cloister-dev/cloister/tee/psa"
)

// Platform token claim keys (Arm CCA Security Model 1.0, section A7.2.3.2).
// Most are the PSA claim keys of RFC 9783.
const (
	claimInstanceID            = 256
	claimImplementationID      = 2396
	claimLifecycle             = 2395
	claimSoftwareComponents    = 2399
	claimVerificationService   = 2400
	claimPlatformConfig        = 2401
	claimPlatformHashAlgorithm = 2402
)

// The platform profile names. The first is the released one, the second
// the name that TF-RMM and early TF-A builds emit.
const (
	ProfilePlatform       = "tag:arm.com,2023:cca_platform#1.0.0"
	ProfilePlatformLegacy = "http://arm.com/CCA-SSD/1.0.0"
)

// PlatformClaims are the decoded claims of a platform token.
type PlatformClaims struct {
	Profile          string
	Challenge        []byte
	ImplementationID []byte
	InstanceID       []byte
	Config           []byte
	Lifecycle        psa.Lifecycle
	Software         []psa.SoftwareComponent
	Service          string
	HashAlgorithm    string
}

// parsePlatformClaims decodes and checks the platform claims set.
func parsePlatformClaims(payload []byte) (*PlatformClaims, error) {
	set, err := cose.DecodeClaimsSet(payload)
	if err != nil {
		return nil, err
	}
	p := &PlatformClaims{}
	if p.Profile, err = requiredText(set, claimProfile, "platform profile"); err != nil {
		return nil, err
	}
	if p.Profile != ProfilePlatform && p.Profile != ProfilePlatformLegacy {
		return nil, fmt.Errorf("platform profile %q is not %s or %s", p.Profile, ProfilePlatform, ProfilePlatformLegacy)
	}
	if err := parsePlatformIdentity(set, p); err != nil {
		return nil, err
	}
	if err := parsePlatformState(set, p); err != nil {
		return nil, err
	}
	return p, nil
}

func parsePlatformIdentity(set cose.ClaimsSet, p *PlatformClaims) error {
	var err error
	if p.Challenge, err = requiredBytes(set, claimChallenge, "platform challenge"); err != nil {
		return err
	}
	if n := len(p.Challenge); n != 32 && n != 48 && n != 64 {
		return fmt.Errorf("platform challenge is %d bytes, want 32, 48 or 64", n)
	}
	if p.ImplementationID, err = requiredBytes(set, claimImplementationID, "implementation ID"); err != nil {
		return err
	}
	if len(p.ImplementationID) != 32 {
		return fmt.Errorf("implementation ID is %d bytes, want 32", len(p.ImplementationID))
	}
	if p.InstanceID, err = requiredBytes(set, claimInstanceID, "instance ID"); err != nil {
		return err
	}
	if err := psa.CheckInstanceID(p.InstanceID); err != nil {
		return err
	}
	if p.Config, err = requiredBytes(set, claimPlatformConfig, "platform configuration"); err != nil {
		return err
	}
	if p.Service, _, err = set.Text(claimVerificationService); err != nil {
		return fmt.Errorf("verification service indicator: %w", err)
	}
	return nil
}

func parsePlatformState(set cose.ClaimsSet, p *PlatformClaims) error {
	v, ok, err := set.Int(claimLifecycle)
	if !ok {
		return fmt.Errorf("security lifecycle claim (%d) missing", claimLifecycle)
	}
	if err != nil {
		return fmt.Errorf("security lifecycle: %w", err)
	}
	if p.Lifecycle, err = psa.ParseLifecycle(v); err != nil {
		return err
	}

	if p.HashAlgorithm, err = requiredText(set, claimPlatformHashAlgorithm, "platform hash algorithm"); err != nil {
		return err
	}
	if _, err := parseHashAlgorithm(p.HashAlgorithm); err != nil {
		return fmt.Errorf("platform hash algorithm: %w", err)
	}

	ok, err = set.Decode(claimSoftwareComponents, &p.Software)
	if !ok {
		return fmt.Errorf("software components claim (%d) missing", claimSoftwareComponents)
	}
	if err != nil {
		return fmt.Errorf("software components: %w", err)
	}
	if len(p.Software) == 0 {
		return fmt.Errorf("software components claim (%d) is empty", claimSoftwareComponents)
	}
	for i, sc := range p.Software {
		if err := psa.CheckSoftwareComponent(sc); err != nil {
			return fmt.Errorf("software component %d: %w", i, err)
		}
	}
	return nil
}
