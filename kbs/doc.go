// Package kbs implements the Key Broker Service protocol of Trustee
// (confidential-containers), version 0.4.0, as the guest components of
// Trustee v0.21.0 speak it: the wire types, the runtime-data canonical form
// and hash that bind a TEE key to evidence, the flattened JWE that carries a
// secret to that key, the server's HTTP handlers and a Go client for agents
// inside a TEE.
//
// The exchange is Request, Challenge, Attestation, Response:
//
//  1. POST /kbs/v0/auth with a Request; the server answers with a Challenge
//     (a fresh nonce) and a kbs-session-id cookie.
//  2. POST /kbs/v0/attest with an Attestation whose evidence carries the
//     hash of the canonical runtime data {additional-evidence, nonce,
//     tee-pubkey}; the server verifies it and answers with an attestation
//     result token (EAR).
//  3. GET /kbs/v0/resource/<repository>/<type>/<tag> with the cookie or the
//     token as a bearer token; the server answers with the secret as a JWE
//     whose content key is wrapped to the tee-pubkey the token certifies.
//
// A resource is released only when every appraisal in the token, the
// primary TEE's and each device's, is affirming or warning, and the
// resource policy then allows it. Trustee leaves the first check to the
// resource policy. Here no resource policy can release a secret to
// evidence that an attestation policy rejected.
//
// The JWE is assembled here on crypto/ecdh, crypto/rsa and crypto/aes rather
// than with go-jose, because guests rebuild the protected header with its
// members in sorted order before using it as AAD, and go-jose writes the
// epk members in another order (kty, crv, x, y), which such guests cannot
// decrypt. The AES key wrap (RFC 3394) and the Concat KDF (NIST SP 800-56A)
// are written here for the same reason and because the decrypting side of
// the tests must not depend on the library that checks it.
package kbs
