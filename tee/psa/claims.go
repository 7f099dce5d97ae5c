package psa

import (
	"fmt"
	"math"
	"strings"

	"github.com/cloister-dev/cloister/internal/cose"
)

// The profile names a PSA token may carry.
const (
	// ProfilePSA2 is the RFC 9783 profile name.
	ProfilePSA2 = "tag:psacertified.org,2023:psa#tfm"
	// ProfilePSA2Draft is the name that drafts of RFC 9783 and TF-M used.
	ProfilePSA2Draft = "http://arm.com/psa/2.0.0"
	// ProfilePSA1 is the legacy PSA IoT profile.
	ProfilePSA1 = "PSA_IOT_PROFILE_1"
)

// claimKeys are the claim keys of one profile.
type claimKeys struct {
	profile, clientID, lifecycle, implementationID   int64
	bootSeed, certificationRef, softwareComponents   int64
	noSoftwareComponents, nonce, instanceID, service int64
}

// keysPSA2 are the claim keys of RFC 9783, section 4. The boot seed moved
// from 2397 in the drafts to the EAT bootseed claim 268, and both are read.
// PSA 2.0 has no no-software-components claim, so its key is 0.
var keysPSA2 = claimKeys{
	profile: 265, clientID: 2394, lifecycle: 2395, implementationID: 2396,
	bootSeed: 268, certificationRef: 2398, softwareComponents: 2399,
	noSoftwareComponents: 0, nonce: 10, instanceID: 256, service: 2400,
}

// draftBootSeedKey is the boot seed claim key of the drafts of RFC 9783.
const draftBootSeedKey = 2397

// keysPSA1 are the private claim keys of the legacy PSA IoT profile 1.
var keysPSA1 = claimKeys{
	profile: -75000, clientID: -75001, lifecycle: -75002, implementationID: -75003,
	bootSeed: -75004, certificationRef: -75005, softwareComponents: -75006,
	noSoftwareComponents: -75007, nonce: -75008, instanceID: -75009, service: -75010,
}

// Claims are the decoded claims of a PSA token.
type Claims struct {
	Profile          string
	ClientID         int64
	Lifecycle        Lifecycle
	ImplementationID []byte
	InstanceID       []byte
	Nonce            []byte
	BootSeed         []byte
	CertificationRef string
	Service          string
	Software         []SoftwareComponent
}

// SoftwareComponent is one entry of the software components claim.
type SoftwareComponent struct {
	// MeasurementType names the component (SPE, NSPE, BL, PRoT, ...).
	MeasurementType string `cbor:"1,keyasint,omitempty"`
	// MeasurementValue is the component's hash.
	MeasurementValue []byte `cbor:"2,keyasint"`
	// Version is the component's version string.
	Version string `cbor:"4,keyasint,omitempty"`
	// SignerID is the hash of the key that signed the component.
	SignerID []byte `cbor:"5,keyasint"`
	// MeasurementDescription names the hash algorithm (sha-256).
	MeasurementDescription string `cbor:"6,keyasint,omitempty"`
}

// validHashSizes are the sizes RFC 9783 allows for the nonce and for
// psa-hash-type values: SHA-256, SHA-384 and SHA-512 digests.
var validHashSizes = map[int]bool{32: true, 48: true, 64: true}

// ParseClaims decodes and checks a PSA claims set under the profile it
// names. Every claim RFC 9783 marks mandatory must be present with its
// required size.
func ParseClaims(payload []byte) (*Claims, error) {
	set, err := cose.DecodeClaimsSet(payload)
	if err != nil {
		return nil, err
	}
	keys, profile, err := profileOf(set)
	if err != nil {
		return nil, err
	}
	c := &Claims{Profile: profile}
	steps := []func(cose.ClaimsSet, claimKeys, *Claims) error{
		parseClientID, parseLifecycle, parseImplementationID, parseInstanceID,
		parseNonce, parseBootSeed, parseOptionalText, parseSoftware,
	}
	for _, step := range steps {
		if err := step(set, keys, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// profileOf finds the profile and its claim keys. A PSA 1.0 token may omit
// the profile claim; its legacy claim keys identify it.
func profileOf(set cose.ClaimsSet) (claimKeys, string, error) {
	if p, ok, err := set.Text(keysPSA2.profile); ok {
		if err != nil {
			return claimKeys{}, "", fmt.Errorf("profile: %w", err)
		}
		switch p {
		case ProfilePSA2, ProfilePSA2Draft:
			return keysPSA2, p, nil
		}
		return claimKeys{}, "", fmt.Errorf("profile %q is not a PSA profile (%s or %s)", p, ProfilePSA2, ProfilePSA2Draft)
	}
	if p, ok, err := set.Text(keysPSA1.profile); ok {
		if err != nil {
			return claimKeys{}, "", fmt.Errorf("profile: %w", err)
		}
		if p != ProfilePSA1 {
			return claimKeys{}, "", fmt.Errorf("profile %q is not %s", p, ProfilePSA1)
		}
		return keysPSA1, p, nil
	}
	if set.Has(keysPSA1.instanceID) {
		return keysPSA1, ProfilePSA1, nil
	}
	return claimKeys{}, "", fmt.Errorf("profile claim (265) missing")
}

func parseClientID(set cose.ClaimsSet, k claimKeys, c *Claims) error {
	v, ok, err := set.Int(k.clientID)
	if !ok {
		return fmt.Errorf("client ID claim (%d) missing", k.clientID)
	}
	if err != nil {
		return fmt.Errorf("client ID: %w", err)
	}
	// Negative values identify non-secure callers and positive values
	// secure partitions, both 32-bit, so zero is no client.
	if v == 0 || v < math.MinInt32 || v > math.MaxInt32 {
		return fmt.Errorf("client ID %d is outside %d..-1 (non-secure) and 1..%d (secure)", v, math.MinInt32, math.MaxInt32)
	}
	c.ClientID = v
	return nil
}

func parseLifecycle(set cose.ClaimsSet, k claimKeys, c *Claims) error {
	v, ok, err := set.Int(k.lifecycle)
	if !ok {
		return fmt.Errorf("security lifecycle claim (%d) missing", k.lifecycle)
	}
	if err != nil {
		return fmt.Errorf("security lifecycle: %w", err)
	}
	c.Lifecycle, err = ParseLifecycle(v)
	return err
}

func parseImplementationID(set cose.ClaimsSet, k claimKeys, c *Claims) error {
	v, err := requiredBytes(set, k.implementationID, "implementation ID")
	if err != nil {
		return err
	}
	if len(v) != 32 {
		return fmt.Errorf("implementation ID is %d bytes, want 32", len(v))
	}
	c.ImplementationID = v
	return nil
}

func parseInstanceID(set cose.ClaimsSet, k claimKeys, c *Claims) error {
	v, err := requiredBytes(set, k.instanceID, "instance ID")
	if err != nil {
		return err
	}
	if err := CheckInstanceID(v); err != nil {
		return err
	}
	c.InstanceID = v
	return nil
}

// CheckInstanceID checks an instance ID: 33 bytes, the first 0x01 (a
// random-type UEID holding a 32-byte hash of the attestation key).
func CheckInstanceID(v []byte) error {
	if len(v) != 33 || v[0] != 0x01 {
		return fmt.Errorf("instance ID %x is not 33 bytes starting with 0x01", v)
	}
	return nil
}

func parseNonce(set cose.ClaimsSet, k claimKeys, c *Claims) error {
	v, err := requiredBytes(set, k.nonce, "nonce")
	if err != nil {
		return err
	}
	if !validHashSizes[len(v)] {
		return fmt.Errorf("nonce is %d bytes, want 32, 48 or 64", len(v))
	}
	c.Nonce = v
	return nil
}

// parseBootSeed reads the boot seed. Profile 1 requires it, 32 bytes long.
// PSA 2.0 makes it optional and 8 to 32 bytes long, under the EAT key 268
// or the draft key 2397, and a token may not carry both.
func parseBootSeed(set cose.ClaimsSet, k claimKeys, c *Claims) error {
	key := k.bootSeed
	minSize, maxSize := 8, 32
	if k == keysPSA1 {
		minSize = 32
		if !set.Has(key) {
			return fmt.Errorf("boot seed claim (%d) missing, which profile %s requires", key, ProfilePSA1)
		}
	} else if set.Has(draftBootSeedKey) {
		if set.Has(key) {
			return fmt.Errorf("both boot seed claims (%d and the draft key %d) are present, so the boot seed is ambiguous", key, draftBootSeedKey)
		}
		key = draftBootSeedKey
	}
	v, ok, err := set.Bytes(key)
	if err != nil {
		return fmt.Errorf("boot seed: %w", err)
	}
	if !ok {
		return nil
	}
	if len(v) < minSize || len(v) > maxSize {
		return fmt.Errorf("boot seed is %d bytes, want %d to %d under profile %s", len(v), minSize, maxSize, c.Profile)
	}
	c.BootSeed = v
	return nil
}

func parseOptionalText(set cose.ClaimsSet, k claimKeys, c *Claims) error {
	for _, f := range []struct {
		key  int64
		name string
		out  *string
	}{
		{k.certificationRef, "certification reference", &c.CertificationRef},
		{k.service, "verification service indicator", &c.Service},
	} {
		v, _, err := set.Text(f.key)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		*f.out = v
	}
	return nil
}

func parseSoftware(set cose.ClaimsSet, k claimKeys, c *Claims) error {
	if k.noSoftwareComponents != 0 && set.Has(k.noSoftwareComponents) {
		if set.Has(k.softwareComponents) {
			return fmt.Errorf("both the software components (%d) and the no-software-components (%d) claims are present", k.softwareComponents, k.noSoftwareComponents)
		}
		v, _, err := set.Int(k.noSoftwareComponents)
		if err != nil || v != 1 {
			return fmt.Errorf("no-software-components claim (%d) must be 1", k.noSoftwareComponents)
		}
		return nil
	}
	var comps []SoftwareComponent
	ok, err := set.Decode(k.softwareComponents, &comps)
	if !ok {
		return fmt.Errorf("software components claim (%d) missing", k.softwareComponents)
	}
	if err != nil {
		return fmt.Errorf("software components: %w", err)
	}
	if len(comps) == 0 {
		return fmt.Errorf("software components claim (%d) is empty", k.softwareComponents)
	}
	for i, sc := range comps {
		if err := CheckSoftwareComponent(sc); err != nil {
			return fmt.Errorf("software component %d: %w", i, err)
		}
	}
	c.Software = comps
	return nil
}

// CheckSoftwareComponent checks that a component carries a measurement
// value and a signer ID of a hash size.
func CheckSoftwareComponent(sc SoftwareComponent) error {
	if !validHashSizes[len(sc.MeasurementValue)] {
		return fmt.Errorf("measurement value is %d bytes, want 32, 48 or 64", len(sc.MeasurementValue))
	}
	if !validHashSizes[len(sc.SignerID)] {
		return fmt.Errorf("signer ID is %d bytes, want 32, 48 or 64", len(sc.SignerID))
	}
	return nil
}

// MeasurementNames returns the measurement name of each component:
// "sw_" and the lowercased measurement type, or "sw_<index>" for a
// component without a type. A repeated type gets its index appended.
func MeasurementNames(comps []SoftwareComponent) []string {
	names := make([]string, len(comps))
	used := map[string]bool{}
	for i, sc := range comps {
		name := fmt.Sprintf("sw_%d", i)
		if sc.MeasurementType != "" {
			name = "sw_" + strings.ToLower(sc.MeasurementType)
		}
		if used[name] {
			name = fmt.Sprintf("%s_%d", name, i)
		}
		used[name] = true
		names[i] = name
	}
	return names
}

func requiredBytes(set cose.ClaimsSet, key int64, name string) ([]byte, error) {
	v, ok, err := set.Bytes(key)
	if !ok {
		return nil, fmt.Errorf("%s claim (%d) missing", name, key)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}
