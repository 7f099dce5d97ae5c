// Package workload contains what every Cloister confidential workload
// shares: the manifest binding, serving over RA-TLS from an emulated or a
// hardware TEE, identifying the parties by their client keys, and the
// client-side verification of a workload.
//
// # Manifest binding
//
// A workload runs under a manifest, a JSON document that the parties
// agree on before any of them sends data (for the clean room: the SQL
// query, the parties, the recipients and the suppression threshold). Its
// digest is SHA-256 of the manifest's canonical bytes (see Canonical), so
// two files that differ only in whitespace or key order have the same
// digest.
//
// The digest is bound where the hardware puts launch configuration, so
// that the TEE's signature covers it and the workload cannot change it
// after launch:
//
//   - SEV-SNP: HOST_DATA (32 bytes), which the host sets in the launch
//     command and the report carries unchanged. The emulated SEV-SNP TEE
//     takes it as snp.EmulatorOptions.HostData.
//   - TDX: MRCONFIGID (48 bytes), set by the host at TD creation. The
//     digest fills its first 32 bytes, and the last 16 bytes are zero.
//
// Both appear in the verified claims as attest.Claims.HostData. The RA-TLS
// claims map of this repository has a fixed set of keys, so the digest is
// not carried there. A TEE without launch configuration in its evidence
// (Nitro, TPM) cannot bind a manifest this way, and BoundDigest rejects
// its claims.
//
// # Verifying a workload
//
// A party connects through a Client (NewClient, then Dial or HTTPClient).
// The RA-TLS handshake verifies the evidence with attest.Verify and
// appraises it with package appraise. The appraisal requires the
// measurement and the manifest digest of Expect, and the freshness
// challenge ties new evidence to the connection. A different digest is
// rejected with an error that names both digests.
//
// # Parties
//
// Parties are not in TEEs. Each holds an ordinary ECDSA or Ed25519 key
// and is named in the manifest by the SHA-256 of its public key
// (SubjectPublicKeyInfo DER). It presents a self-signed certificate for
// that key in the mutual TLS handshake; the server requires one, accepts
// only keys listed in its Parties, and hands the party's name to the
// handler through PartyFromContext.
//
// A manifest lists each party as a ManifestParty (name and key_sha256).
// DecodeManifest, CheckParties and CheckPartyNames hold the checks that
// every workload's manifest shares, and each workload package adds its
// own fields and rules.
//
// # HTTP APIs
//
// The workloads serve JSON over the RA-TLS connection. Every error
// response is the object {"error": message}, written by WriteError and
// read back by APIClient as an *APIError with the HTTP status.
package workload
