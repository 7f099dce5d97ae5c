// Package cca verifies Arm Confidential Compute Architecture (CCA)
// attestation tokens. A token is a CBOR-tagged collection (tag 399) of a
// platform token and a realm token, each a COSE_Sign1 message, as the Arm
// CCA Security Model 1.0 and the Realm Management Monitor specification 1.0
// (section A7.2) define them.
//
// The realm token is signed by the Realm Attestation Key (RAK), whose public
// key it carries. The platform token is signed by the CCA Platform
// Attestation Key (CPAK), which the caller supplies as a PEM
// SubjectPublicKeyInfo or JWK. A key bound to the platform's instance ID is
// preferred, by the same rule as for a PSA IAK. The platform token's
// challenge is the hash of the RAK public key claim under the realm's public
// key hash algorithm, which binds the two tokens together.
//
// The claims are decoded by hand over fxamacker/cbor because
// github.com/veraison/ccatoken is not among the project's dependencies; the
// COSE layer is github.com/veraison/go-cose.
package cca
