// Package psa verifies Arm PSA attestation tokens (RFC 9783, "Arm's
// Platform Security Architecture (PSA) Attestation Token"): a COSE_Sign1
// message over an EAT claims set, signed by the device's Initial Attestation
// Key (IAK).
//
// Both profiles are accepted: PSA 2.0 ("tag:psacertified.org,2023:psa#tfm"
// and its draft name "http://arm.com/psa/2.0.0"), with the claim keys of RFC
// 9783, and the legacy PSA 1.0 profile ("PSA_IOT_PROFILE_1"), with the
// private claim keys -75000 to -75010.
//
// There is no certificate chain: the IAK public key is the trust anchor and
// comes from the caller, as a PEM SubjectPublicKeyInfo or a JWK in the
// collateral or the trust anchors. A key bound to the token's instance ID is
// preferred: the instance ID is 0x01 followed by the SHA-256 of the
// uncompressed key point (as TF-M derives it), or a JWK's kid is the
// instance ID. When no key is bound, each supplied key is tried and the
// claims name the one that verified.
//
// The claims are decoded by hand over fxamacker/cbor because
// github.com/veraison/psatoken is not among the project's dependencies; the
// COSE layer is github.com/veraison/go-cose.
package psa
