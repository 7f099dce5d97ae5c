// Package token verifies the attestation tokens that attestation services
// issue after they have appraised TEE evidence: Google Confidential Space
// tokens (gcp-token), Microsoft Azure Attestation tokens (maa-token) and
// Intel Trust Authority tokens (ita-token). All three are JSON Web Tokens in
// JWS compact serialization. The format of a token is detected from its iss
// claim, read by its exact member name and compared case-sensitively, as
// RFC 7519 requires.
//
// A token proves what the service saw, so trust rests on the service's
// signing key. The key comes from a JSON Web Key Set the caller supplies,
// selected by kid and alg. For Intel Trust Authority, each key's x5c chain
// must also verify to the caller's root. Confidential Space PKI tokens carry
// their own x5c chain, which must verify to the caller's root. A root
// certificate inside a token or a JWKS is never trusted by itself.
//
// Signatures are checked by github.com/go-jose/go-jose/v4 with an explicit
// algorithm allow-list per issuer. The registered-claim checks (issuer,
// expiry, not-before, issued-at) and the mapping of each service's TEE
// claims into attest.Claims are written here because go-jose's jwt package
// knows neither the services' issuers nor their claims.
//
// An MAA SEV-SNP token contains the report's VMPL, stored as the attribute
// x-ms-sevsnpvm-vmpl, which appraise.Options.MaxVMPL reads. Neither MAA
// nor Intel Trust Authority tokens contain the TCB evaluation data number
// of the collateral the service used, so
// appraise.Options.MinTCBEvaluationDataNumber rejects their SGX and TDX
// tokens.
package token
