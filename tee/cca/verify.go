package cca

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/cose"
	"github.com/cloister-dev/cloister/tee/psa"
)

func init() { attest.Register(Verifier{}) }

// Verifier verifies CCA attestation tokens. The zero value is ready to use.
type Verifier struct{}

// Name returns "cca".
func (Verifier) Name() string { return string(attest.TEECCA) }

// Detect reports whether data is a CBOR tag 399 collection holding a
// platform token and a realm token.
func (Verifier) Detect(data []byte) bool {
	if !bytes.HasPrefix(data, collectionPrefix) {
		return false
	}
	_, err := parseCollection(data)
	return err == nil
}

// Token is a decoded CCA token whose signatures are not yet checked.
type Token struct {
	Realm         *cose.Sign1
	RealmClaims   *RealmClaims
	Platform      *cose.Sign1
	PlatformClaim *PlatformClaims
}

// untaggedReason explains the rejection of an untagged token: RMM 1.0
// defines both entries of the collection as COSE_Sign1_Tagged.
const untaggedReason = "COSE_Sign1 message without CBOR tag 18, but the CCA token collection carries only tagged messages"

// Parse decodes the collection and both tokens and checks their claims.
func Parse(data []byte) (*Token, error) {
	coll, err := parseCollection(data)
	if err != nil {
		return nil, attest.Malformed("collection", "invalid CCA token collection", err)
	}
	t := &Token{}
	if t.Realm, err = cose.DecodeSign1(coll.Realm); err != nil {
		return nil, attest.Malformed("realm token", "invalid realm token envelope", err)
	}
	if !t.Realm.Tagged {
		return nil, attest.Malformed("realm token", untaggedReason, nil)
	}
	if t.RealmClaims, err = parseRealmClaims(t.Realm.Message.Payload); err != nil {
		return nil, attest.Malformed("realm token", "invalid realm claims", err)
	}
	if t.Platform, err = cose.DecodeSign1(coll.Platform); err != nil {
		return nil, attest.Malformed("platform token", "invalid platform token envelope", err)
	}
	if !t.Platform.Tagged {
		return nil, attest.Malformed("platform token", untaggedReason, nil)
	}
	if t.PlatformClaim, err = parsePlatformClaims(t.Platform.Message.Payload); err != nil {
		return nil, attest.Malformed("platform token", "invalid platform claims", err)
	}
	return t, nil
}

// Verify checks the realm token under the RAK it carries, the platform
// token under the CPAK the caller supplied, the binding of the RAK to the
// platform challenge, and the realm challenge when opts.Nonce is set.
func (Verifier) Verify(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	t, err := Parse(ev.Data)
	if err != nil {
		return nil, err
	}
	if err := t.Realm.Verify(t.RealmClaims.RAK); err != nil {
		return nil, (&attest.Error{Kind: attest.ErrSignature, Field: "realm token signature",
			Reason: "the realm token signature does not verify under the realm attestation key (RAK) it carries", Err: err}).
			WithFix("check that the token is unmodified")
	}

	keys, err := cose.CallerKeys(ctx, opts, collateral.Query{TEE: string(attest.TEECCA), At: opts.Time()})
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, attest.Errorf(attest.ErrCollateralMissing, "CPAK", "no CCA platform attestation key (CPAK) public key was supplied, so the platform token signature cannot be checked").
			WithFix("pass the platform's CPAK public key (PEM SubjectPublicKeyInfo or JWK) with --collateral or --trust-anchor")
	}
	candidates, bound := psa.KeysForInstance(keys, t.PlatformClaim.InstanceID)
	cpak, err := t.Platform.VerifyWithKeys(candidates)
	if err != nil {
		return nil, (&attest.Error{Kind: attest.ErrSignature, Field: "platform token signature",
			Reason: "the platform token signature is invalid", Err: err}).
			WithFix("check that the token is unmodified and that the supplied key is this platform's CPAK")
	}

	c := claimsFrom(t, cpak, opts)
	if bound {
		c.Pass("cpak-bound-to-instance-id")
	} else {
		c.Skip("cpak-bound-to-instance-id", false, fmt.Sprintf("no supplied key is bound to instance ID %x, so each of the %d supplied keys was tried and %s verified the platform token", t.PlatformClaim.InstanceID, len(keys), cpak.Source))
	}
	if err := checkRAKBinding(c, t); err != nil {
		return c, err
	}
	if err := checkChallenge(c, t.RealmClaims.Challenge, opts.Nonce); err != nil {
		return c, err
	}
	return c, nil
}

// checkRAKBinding checks that the platform challenge is the hash of the RAK
// claim's bytes, which ties the realm token to this platform token.
func checkRAKBinding(c *attest.Claims, t *Token) error {
	h, _ := parseHashAlgorithm(t.RealmClaims.PublicKeyHashAlgorithm)
	want := digest(h, t.RealmClaims.PublicKey)
	if !bytes.Equal(t.PlatformClaim.Challenge, want) {
		c.Fail("rak-binding", "the platform challenge is not the hash of the realm public key")
		return attest.Errorf(attest.ErrBinding, "platform challenge", "the platform challenge is not the %s hash of the realm attestation key, so the realm token does not belong to this platform token", t.RealmClaims.PublicKeyHashAlgorithm).
			WithValues(hex.EncodeToString(t.PlatformClaim.Challenge), hex.EncodeToString(want)).
			WithFix("verify the two tokens exactly as the platform returned them")
	}
	c.Pass("rak-binding")
	return nil
}

// checkChallenge compares the realm challenge with the expected nonce,
// zero-padded to 64 bytes.
func checkChallenge(c *attest.Claims, got, want []byte) error {
	if len(want) == 0 {
		c.Skip("nonce", false, "no expected nonce was given")
		return nil
	}
	padded := want
	if len(want) < ChallengeSize {
		padded = append(bytes.Clone(want), make([]byte, ChallengeSize-len(want))...)
	}
	if !bytes.Equal(got, padded) {
		c.Fail("nonce", "the realm challenge differs from the expected nonce")
		return attest.Errorf(attest.ErrBinding, "realm challenge", "the realm challenge differs from the expected nonce").
			WithValues(hex.EncodeToString(got), hex.EncodeToString(padded)).
			WithFix("request a fresh token with the expected challenge; a different challenge means a replayed or foreign token")
	}
	c.Pass("nonce")
	return nil
}

func claimsFrom(t *Token, cpak cose.CallerKey, opts attest.Options) *attest.Claims {
	r, p := t.RealmClaims, t.PlatformClaim
	c := &attest.Claims{
		TEE:         attest.TEECCA,
		TrustAnchor: cpak.Anchor(TestKeys),
		Measurement: r.RIM,
		// The realm challenge is both the freshness nonce and the 64 bytes
		// of caller-chosen data that a realm binds, as configfs-tsm's
		// inblob does, so it is the report data too.
		Nonce:      r.Challenge,
		ReportData: r.Challenge,
		Debug:      p.Lifecycle.Debug(),
		ChipID:     p.InstanceID,
		SigningKey: "CPAK",
		VerifiedAt: opts.Time().UTC(),
	}
	c.Pass("realm-token-signature")
	c.Pass("platform-token-signature")

	c.SetMeasurement("rim", r.RIM)
	for i, rem := range r.REMs {
		c.SetMeasurement(fmt.Sprintf("rem%d", i), rem)
	}
	c.SetMeasurement("rpv", r.Personalization)
	c.SetMeasurement("implementation_id", p.ImplementationID)
	c.SetPlatform("instance_id", hex.EncodeToString(p.InstanceID))
	c.SetPlatform("implementation_id", hex.EncodeToString(p.ImplementationID))

	c.SetAttribute("platform_profile", p.Profile)
	if r.Profile != "" {
		c.SetAttribute("realm_profile", r.Profile)
	}
	c.SetAttribute("realm_hash_algorithm", r.HashAlgorithm)
	c.SetAttribute("realm_public_key_hash_algorithm", r.PublicKeyHashAlgorithm)
	c.SetAttribute("realm_signing_algorithm", t.Realm.Algorithm.String())
	c.SetAttribute("platform_signing_algorithm", t.Platform.Algorithm.String())
	c.SetAttribute("platform_hash_algorithm", p.HashAlgorithm)
	c.SetAttribute("platform_config", hex.EncodeToString(p.Config))
	c.SetAttribute("security_lifecycle", p.Lifecycle.String())
	if p.Service != "" {
		c.SetAttribute("verification_service", p.Service)
	}
	c.SetAttribute("platform_software_components", psa.SoftwareAttributes(p.Software))

	psa.CheckLifecycle(c, "platform-security-lifecycle", "the platform", p.Lifecycle)
	return c
}
