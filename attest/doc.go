// Package attest defines the TEE-neutral model that every part of Cloister
// shares: raw Evidence, the Claims a verifier proves from it, the Verifier and
// Attester interfaces that each TEE package implements, and typed errors.
//
// A TEE package (snp, dcap, nitro, ...) registers its Verifier with Register
// from an init function. Callers detect the format of unknown bytes with
// Detect and verify them with the returned Verifier. Everything above the
// verifiers (appraisal, policy, tokens, the key broker, RA-TLS) sees only
// Claims.
package attest
