package psa

import (
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/cose"
)

// claimNames names the claims of both profiles for inspection.
var claimNames = map[int64]string{
	265: "profile", 2394: "client_id", 2395: "security_lifecycle", 2396: "implementation_id",
	268: "boot_seed", 2397: "boot_seed", 2398: "certification_reference", 2399: "software_components",
	10: "nonce", 256: "instance_id", 2400: "verification_service",
	-75000: "profile", -75001: "client_id", -75002: "security_lifecycle", -75003: "implementation_id",
	-75004: "boot_seed", -75005: "certification_reference", -75006: "software_components",
	-75007: "no_software_components", -75008: "nonce", -75009: "instance_id", -75010: "verification_service",
}

// Inspect decodes the token's envelope and claims without verifying them.
func (Verifier) Inspect(data []byte) (any, error) {
	msg, err := cose.DecodeSign1(data)
	if err != nil {
		return nil, attest.Malformed("COSE_Sign1", "invalid PSA token envelope", err)
	}
	claims, err := cose.DescribeClaims(msg.Message.Payload, claimNames)
	if err != nil {
		return nil, attest.Malformed("claims", "invalid PSA claims set", err)
	}
	return map[string]any{"cose_sign1": msg.Describe(), "claims": claims}, nil
}
