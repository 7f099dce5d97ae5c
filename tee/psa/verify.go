package psa

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/cose"
)

func init() { attest.Register(Verifier{}) }

// Verifier verifies PSA attestation tokens. The zero value is ready to use.
type Verifier struct{}

// Name returns "psa".
func (Verifier) Name() string { return string(attest.TEEPSA) }

// Detect reports whether data is a COSE_Sign1 message whose payload names a
// PSA profile or carries the legacy PSA instance ID claim.
func (Verifier) Detect(data []byte) bool {
	if !cose.LooksLikeSign1(data) {
		return false
	}
	msg, err := cose.DecodeSign1(data)
	if err != nil {
		return false
	}
	set, err := cose.DecodeClaimsSet(msg.Message.Payload)
	if err != nil {
		return false
	}
	_, _, err = profileOf(set)
	return err == nil
}

// Verify checks the token's signature under the IAK that the caller
// supplied, then its claims, and the nonce when opts.Nonce is set.
func (Verifier) Verify(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	msg, err := cose.DecodeSign1(ev.Data)
	if err != nil {
		return nil, attest.Malformed("COSE_Sign1", "invalid PSA token envelope", err)
	}
	tok, err := ParseClaims(msg.Message.Payload)
	if err != nil {
		return nil, attest.Malformed("claims", "invalid PSA claims set", err)
	}

	keys, err := cose.CallerKeys(ctx, opts, collateral.Query{TEE: string(attest.TEEPSA), At: opts.Time()})
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, attest.Errorf(attest.ErrCollateralMissing, "IAK", "no initial attestation key (IAK) public key was supplied, so the token signature cannot be checked").
			WithFix("pass the device's IAK public key (PEM SubjectPublicKeyInfo or JWK) with --collateral or --trust-anchor")
	}
	candidates, bound := KeysForInstance(keys, tok.InstanceID)
	key, err := msg.VerifyWithKeys(candidates)
	if err != nil {
		e := &attest.Error{Kind: attest.ErrSignature, Field: "IAK signature", Reason: "the PSA token signature is invalid", Err: err,
			Fix: "check that the token is unmodified and that the supplied key is this device's IAK"}
		if bound {
			e.Reason += " under the key bound to instance ID " + hex.EncodeToString(tok.InstanceID)
		}
		return nil, e
	}

	c := claimsFrom(tok, msg, key, opts)
	if bound {
		c.Pass("iak-bound-to-instance-id")
	} else {
		detail := fmt.Sprintf("no supplied key is bound to instance ID %x, so each of the %d supplied keys was tried and %s verified the token", tok.InstanceID, len(keys), key.Source)
		c.Skip("iak-bound-to-instance-id", false, detail)
		c.Warnings = append(c.Warnings, detail)
	}
	if err := CheckNonce(c, tok.Nonce, opts.Nonce); err != nil {
		return c, err
	}
	return c, nil
}

// KeysForInstance returns the keys bound to the instance ID, and true, when
// there are any; otherwise every key, and false. A key is bound when the
// instance ID is 0x01 followed by the SHA-256 of its uncompressed point (the
// TF-M derivation) or when its JWK kid is the instance ID in hexadecimal or
// base64url.
func KeysForInstance(keys []cose.CallerKey, instanceID []byte) ([]cose.CallerKey, bool) {
	var bound []cose.CallerKey
	for _, k := range keys {
		if keyBound(k, instanceID) {
			bound = append(bound, k)
		}
	}
	if len(bound) > 0 {
		return bound, true
	}
	return keys, false
}

func keyBound(k cose.CallerKey, instanceID []byte) bool {
	if k.KeyID != "" {
		if k.KeyID == hex.EncodeToString(instanceID) || k.KeyID == base64.RawURLEncoding.EncodeToString(instanceID) {
			return true
		}
	}
	ec, ok := k.Key.(*ecdsa.PublicKey)
	if !ok {
		return false
	}
	point, err := ec.Bytes()
	if err != nil {
		return false
	}
	sum := sha256.Sum256(point)
	return len(instanceID) == 33 && bytes.Equal(instanceID[1:], sum[:])
}

func claimsFrom(tok *Claims, msg *cose.Sign1, key cose.CallerKey, opts attest.Options) *attest.Claims {
	c := &attest.Claims{
		TEE:         attest.TEEPSA,
		TrustAnchor: key.Anchor(TestKeys),
		Nonce:       tok.Nonce,
		Debug:       tok.Lifecycle.Debug(),
		ChipID:      tok.InstanceID,
		SigningKey:  "IAK",
		VerifiedAt:  opts.Time().UTC(),
	}
	c.Pass("cose-sign1-signature")
	c.Pass("claims")

	c.SetMeasurement("implementation_id", tok.ImplementationID)
	for i, name := range MeasurementNames(tok.Software) {
		c.SetMeasurement(name, tok.Software[i].MeasurementValue)
	}
	c.SetPlatform("instance_id", hex.EncodeToString(tok.InstanceID))
	c.SetPlatform("implementation_id", hex.EncodeToString(tok.ImplementationID))

	c.SetAttribute("profile", tok.Profile)
	c.SetAttribute("signing_algorithm", msg.Algorithm.String())
	c.SetAttribute("client_id", tok.ClientID)
	c.SetAttribute("security_lifecycle", tok.Lifecycle.String())
	if tok.CertificationRef != "" {
		c.SetAttribute("certification_reference", tok.CertificationRef)
	}
	if tok.Service != "" {
		c.SetAttribute("verification_service", tok.Service)
	}
	if tok.BootSeed != nil {
		c.SetAttribute("boot_seed", hex.EncodeToString(tok.BootSeed))
	}
	c.SetAttribute("software_components", SoftwareAttributes(tok.Software))

	CheckLifecycle(c, "security-lifecycle", "the device", tok.Lifecycle)
	return c
}

// CheckLifecycle records the check name for the security lifecycle l of
// subject, such as "the device". It passes when l is secured, and fails
// for the states before and after deployment (unknown, assembly and test,
// PSA RoT provisioning, decommissioned), because their evidence does not
// describe a deployed device. The debug states pass this check and set
// Claims.Debug, which appraisal rejects by default.
func CheckLifecycle(c *attest.Claims, name, subject string, l Lifecycle) {
	if l.Major() == LifecycleSecured || l.Debug() {
		c.Pass(name)
		return
	}
	c.Fail(name, fmt.Sprintf("the security lifecycle of %s is %s, not secured, so it is not in its deployed state", subject, l))
}

// SoftwareAttributes renders the software components for Claims.Attributes.
func SoftwareAttributes(comps []SoftwareComponent) []map[string]string {
	out := make([]map[string]string, len(comps))
	for i, sc := range comps {
		m := map[string]string{
			"measurement_value": hex.EncodeToString(sc.MeasurementValue),
			"signer_id":         hex.EncodeToString(sc.SignerID),
		}
		for k, v := range map[string]string{"measurement_type": sc.MeasurementType, "version": sc.Version, "measurement_description": sc.MeasurementDescription} {
			if v != "" {
				m[k] = v
			}
		}
		out[i] = m
	}
	return out
}

// CheckNonce compares the token's nonce with the expected one, when the
// caller set one, and records the check.
func CheckNonce(c *attest.Claims, got, want []byte) error {
	if len(want) == 0 {
		c.Skip("nonce", false, "no expected nonce was given")
		return nil
	}
	if !bytes.Equal(got, want) {
		c.Fail("nonce", "the token's nonce differs from the expected nonce")
		return attest.Errorf(attest.ErrBinding, "nonce", "the token's nonce differs from the expected nonce").
			WithValues(hex.EncodeToString(got), hex.EncodeToString(want)).
			WithFix("request a fresh token with the expected nonce; a different nonce means a replayed or foreign token")
	}
	c.Pass("nonce")
	return nil
}
