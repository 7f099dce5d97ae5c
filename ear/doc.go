// Package ear issues and verifies attestation results as EAR tokens (IETF
// RATS "EAT Attestation Results", draft-ietf-rats-ear): JWTs signed with
// the service's ES256 key whose claims carry, per appraised TEE, a status,
// an AR4SI trustworthiness vector, the appraisal policy and the evidence's
// key claims. Keys are published as a JWKS so that a relying party can
// verify a token with any JOSE library.
//
// The submodule layout follows the one Trustee's KBS reads (cpu0 for the
// primary TEE, the TEE public key under
// ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey), so that
// resource policies written for Trustee read Cloister's tokens. The
// eat_profile differs: Trustee v0.21.0 writes its own profile
// (tag:github.com,2024:confidential-containers/Trustee), Cloister the EAR
// profile, which Verify requires.
//
// Verify also requires ear.verifier-id with its developer and build, and
// a submods map with at least one appraisal. Each appraisal must be a JSON
// object with an ear.status that is one of the four AR4SI tiers. The exp
// claim must be after iat, and the verification key must be a P-256
// public key whose JWK alg and use, when set, are ES256 and sig.
package ear
