package cca

import (
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/cose"
)

var realmClaimNames = map[int64]string{
	claimChallenge: "challenge", claimProfile: "profile", claimPersonalization: "personalization_value",
	claimRealmHashAlgorithm: "hash_algorithm", claimRealmPublicKey: "public_key", claimRIM: "initial_measurement",
	claimREMs: "extensible_measurements", claimRAKHashAlgorithm: "public_key_hash_algorithm",
}

var platformClaimNames = map[int64]string{
	claimChallenge: "challenge", claimProfile: "profile", claimInstanceID: "instance_id",
	claimImplementationID: "implementation_id", claimLifecycle: "security_lifecycle",
	claimSoftwareComponents: "software_components", claimVerificationService: "verification_service",
	claimPlatformConfig: "config", claimPlatformHashAlgorithm: "hash_algorithm",
}

// Inspect decodes the collection and both tokens without verifying them.
func (Verifier) Inspect(data []byte) (any, error) {
	coll, err := parseCollection(data)
	if err != nil {
		return nil, attest.Malformed("collection", "invalid CCA token collection", err)
	}
	out := map[string]any{}
	for _, part := range []struct {
		name  string
		token []byte
		names map[int64]string
	}{
		{"platform", coll.Platform, platformClaimNames},
		{"realm", coll.Realm, realmClaimNames},
	} {
		msg, err := cose.DecodeSign1(part.token)
		if err != nil {
			return nil, attest.Malformed(part.name+" token", "invalid COSE_Sign1 envelope", err)
		}
		claims, err := cose.DescribeClaims(msg.Message.Payload, part.names)
		if err != nil {
			return nil, attest.Malformed(part.name+" token", "invalid claims set", err)
		}
		out[part.name] = map[string]any{"cose_sign1": msg.Describe(), "claims": claims}
	}
	return out, nil
}
