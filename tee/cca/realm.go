package cca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"

	gocose "github.com/veraison/go-cose"

	"github.com/cloister-dev/cloister/internal/cose"
)

// Realm token claim keys (RMM specification 1.0, section A7.2.3.1).
const (
	claimChallenge          = 10
	claimProfile            = 265
	claimPersonalization    = 44235
	claimRealmHashAlgorithm = 44236
	claimRealmPublicKey     = 44237
	claimRIM                = 44238
	claimREMs               = 44239
	claimRAKHashAlgorithm   = 44240
)

// ProfileRealm is the realm profile name. The claim is optional, and a realm
// token without it follows the profile of its platform token.
const ProfileRealm = "tag:arm.com,2023:realm#1.0.0"

// ChallengeSize is the size of the realm challenge. A caller's shorter
// challenge is zero-padded to this size, as the RMM pads the challenge the
// realm passes to RSI_ATTEST_TOKEN_INIT.
const ChallengeSize = 64

// personalizationSize is the size of the realm personalization value.
const personalizationSize = 64

// remCount is the number of realm extensible measurements.
const remCount = 4

// RealmClaims are the decoded claims of a realm token.
type RealmClaims struct {
	Profile         string
	Challenge       []byte
	Personalization []byte
	HashAlgorithm   string
	// PublicKey is the RAK claim as encoded: a COSE_Key or a raw EC point.
	PublicKey []byte
	// RAK is the parsed RAK.
	RAK                    crypto.PublicKey
	RIM                    []byte
	REMs                   [][]byte
	PublicKeyHashAlgorithm string
}

// parseRealmClaims decodes and checks the realm claims set.
func parseRealmClaims(payload []byte) (*RealmClaims, error) {
	set, err := cose.DecodeClaimsSet(payload)
	if err != nil {
		return nil, err
	}
	r := &RealmClaims{}
	var hasProfile bool
	if r.Profile, hasProfile, err = set.Text(claimProfile); err != nil {
		return nil, fmt.Errorf("realm profile: %w", err)
	}
	if hasProfile && r.Profile != ProfileRealm {
		return nil, fmt.Errorf("realm profile %q is not %s, the only realm profile this verifier checks", r.Profile, ProfileRealm)
	}
	if r.Challenge, err = requiredBytes(set, claimChallenge, "realm challenge"); err != nil {
		return nil, err
	}
	if len(r.Challenge) != ChallengeSize {
		return nil, fmt.Errorf("realm challenge is %d bytes, want %d", len(r.Challenge), ChallengeSize)
	}
	if r.Personalization, err = requiredBytes(set, claimPersonalization, "realm personalization value"); err != nil {
		return nil, err
	}
	if len(r.Personalization) != personalizationSize {
		return nil, fmt.Errorf("realm personalization value is %d bytes, want %d", len(r.Personalization), personalizationSize)
	}
	if err := parseRealmMeasurements(set, r); err != nil {
		return nil, err
	}
	if err := parseRAK(set, r); err != nil {
		return nil, err
	}
	return r, nil
}

func parseRealmMeasurements(set cose.ClaimsSet, r *RealmClaims) error {
	var err error
	if r.HashAlgorithm, err = requiredText(set, claimRealmHashAlgorithm, "realm hash algorithm"); err != nil {
		return err
	}
	h, err := parseHashAlgorithm(r.HashAlgorithm)
	if err != nil {
		return fmt.Errorf("realm hash algorithm: %w", err)
	}
	if r.RIM, err = requiredBytes(set, claimRIM, "realm initial measurement"); err != nil {
		return err
	}
	if len(r.RIM) != h.Size() {
		return fmt.Errorf("realm initial measurement is %d bytes, want %d for %s", len(r.RIM), h.Size(), r.HashAlgorithm)
	}

	ok, err := set.Decode(claimREMs, &r.REMs)
	if !ok {
		return fmt.Errorf("realm extensible measurements claim (%d) missing", claimREMs)
	}
	if err != nil {
		return fmt.Errorf("realm extensible measurements: %w", err)
	}
	if len(r.REMs) != remCount {
		return fmt.Errorf("realm extensible measurements: %d values, want %d", len(r.REMs), remCount)
	}
	for i, rem := range r.REMs {
		if len(rem) != h.Size() {
			return fmt.Errorf("realm extensible measurement %d is %d bytes, want %d for %s", i, len(rem), h.Size(), r.HashAlgorithm)
		}
	}
	return nil
}

func parseRAK(set cose.ClaimsSet, r *RealmClaims) error {
	var err error
	if r.PublicKeyHashAlgorithm, err = requiredText(set, claimRAKHashAlgorithm, "realm public key hash algorithm"); err != nil {
		return err
	}
	if _, err := parseHashAlgorithm(r.PublicKeyHashAlgorithm); err != nil {
		return fmt.Errorf("realm public key hash algorithm: %w", err)
	}
	if r.PublicKey, err = requiredBytes(set, claimRealmPublicKey, "realm public key"); err != nil {
		return err
	}
	if r.RAK, err = parseRealmPublicKey(r.PublicKey); err != nil {
		return fmt.Errorf("realm public key: %w", err)
	}
	return nil
}

// parseRealmPublicKey parses the RAK claim. Early RMM releases encode it as
// an uncompressed EC point (0x04 || X || Y), later ones as a COSE_Key.
func parseRealmPublicKey(b []byte) (crypto.PublicKey, error) {
	if len(b) > 0 && b[0] == 0x04 {
		for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
			size := (curve.Params().BitSize + 7) / 8
			if len(b) == 1+2*size {
				return ecdsa.ParseUncompressedPublicKey(curve, b)
			}
		}
		return nil, fmt.Errorf("a raw EC point of %d bytes fits no NIST curve", len(b))
	}
	var key gocose.Key
	if err := key.UnmarshalCBOR(b); err != nil {
		return nil, fmt.Errorf("neither a raw EC point nor a COSE_Key: %w", err)
	}
	pub, err := key.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("COSE_Key: %w", err)
	}
	return pub, nil
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

func requiredText(set cose.ClaimsSet, key int64, name string) (string, error) {
	v, ok, err := set.Text(key)
	if !ok {
		return "", fmt.Errorf("%s claim (%d) missing", name, key)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}
