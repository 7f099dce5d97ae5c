// Package ratls implements attested TLS (RA-TLS) for Go's crypto/tls: a
// TEE presents a self-signed certificate whose evidence binds the
// certificate's public key, and the peer verifies that evidence with the
// registered verifiers (attest.Verify), an appraisal and optionally a
// policy callback (for the Rego engine) before it sends anything.
//
// # Certificate format
//
// The evidence travels in the TCG DICE "tagged evidence" extension (OID
// 2.23.133.5.4.9) in the layout Gramine writes. The extension value is the
// CBOR item tag(N)([evidence: bstr, claims: bstr]), and claims is a
// serialized CBOR map with text keys. The tag N names the format: 60000
// for an SGX or TDX quote, as Gramine uses it, and 0x1a7504 for an SEV-SNP
// report, as rats-tls uses it (0x1a7501, rats-tls' Intel quote tag, is
// read too). A verifier detects the evidence format from its content and
// rejects a tag that names another format.
//
// Auxiliary data such as the SEV-SNP certificate table is produced
// together with the evidence, so it cannot be hashed into the report
// data. It travels in the TCG DICE endorsement extension (OID
// 2.23.133.5.4.2) as tag(N)(aux: bstr). A certificate carries only the
// Aux that Attest returns, so a TDX guest's CC event log, which the TDX
// attesters return from EventLog instead (attest.EventLogger), stays out
// of it.
//
// On read, two older layouts are accepted as well. The first is Gramine's
// legacy extension, which contains a raw SGX quote (its OID bytes decode
// as 0.6.9.42.840.113741.1337.6, and 1.2.840.113741.1337.6 is accepted
// too). The second is the Open Enclave evidence extension (OID
// 1.3.6.1.4.1.311.105.2, or 1.2.840.113556.10.1.2 from older releases),
// which contains an OE attestation header followed by an SGX quote and
// the custom claims buffer. A certificate with an Open Enclave report
// extension (1.3.6.1.4.1.311.105.1 or 1.2.840.113556.10.1.1) is rejected
// as unsupported. Gramine 1.8 and later write the tagged evidence and the
// legacy quote side by side, each with a quote of its own. Such a
// certificate is verified by its tagged evidence, and its legacy quote
// must also verify, bind the key and come from the same enclave in the
// same debug mode.
//
// # Binding (rule "cloister-v1")
//
// For each certificate, the issuer generates a fresh ECDSA P-256 key and
// encodes, with the core deterministic CBOR rules, the claims map
//
//	{"cloister-ratls": "v1",
//	 "pubkey-hash": bstr(CBOR [1, SHA-256(SubjectPublicKeyInfo DER)]),
//	 "nonce": 32 random bytes,
//	 "iat": issuance time in Unix seconds,
//	 "role": "server" or "client"}
//
// and asks the TEE for evidence with report data = SHA-512(claims map),
// all 64 bytes. The "cloister-ratls" key is the domain separator. The
// certificate's notBefore equals iat and its notAfter is iat plus the
// lifetime (one hour by default). A verifier checks that SHA-512 of the
// claims buffer equals the report data the TEE signed, that pubkey-hash
// equals the hash of the certificate's SubjectPublicKeyInfo, that iat
// equals notBefore and is at most VerifyOptions.MaxAge old, and that the
// role is the one expected at its end. The TLS handshake then proves that
// the peer holds the private key. VerifyCertificate and `cloister verify`
// apply the same maximum age from attest.Options.MaxAge (--max-age),
// DefaultMaxAge by default, so a certificate whose notAfter lies further
// out is still rejected once its evidence is too old.
//
// Certificates of other software are verified by their own rules: report
// data[0:32] = SHA-256(claims) with a matching pubkey-hash (Gramine,
// rats-tls), report data[0:32] = SHA-256(SubjectPublicKeyInfo) (Gramine
// legacy), and report data[0:32] = SHA-256(custom claims) where the
// custom claims buffer is the public key in PEM (Open Enclave). These
// carry no issuance time, so a Verifier rejects them unless
// VerifyOptions.AllowUndated is set. The rule that matched is reported in
// the claims attribute ratls_binding_rule.
//
// # Freshness and threat model
//
// The attacker controls the network and may hold old certificates, old
// evidence and their private keys from a TEE that has since been patched,
// reverted or lost, but cannot forge evidence of a current TEE. Two
// mechanisms bound what it can do:
//
//   - The issuance time is inside the report data, so it cannot be changed
//     after the TEE signed it. A verifier rejects evidence older than
//     MaxAge, and CertSource renews the certificate at half its lifetime,
//     so an honest server always has fresh evidence. The time is the
//     TEE's own clock, which on SEV-SNP and TDX the host supplies, so a
//     host can obtain certificates dated in the future while it controls
//     the TEE and use them later, up to MaxAge past their date. Only the
//     challenge gives freshness that does not rest on the host.
//   - The challenge (ALPN protocol ProtoChallenge): after the handshake
//     the client sends a 32-byte nonce it chose, and the server returns
//     evidence whose report data is SHA-512 of the CBOR map
//     {"cloister-ratls": "challenge-v1", "role": "server", "exporter": E,
//     "nonce": N}, where E is 32 bytes of the connection's TLS exporter
//     (label "EXPORTER-cloister-ratls-challenge"). The nonce is
//     controlled by the verifier, so the evidence is no older than the
//     connection; the exporter ties it to this TLS session, so it cannot
//     be relayed from another session. The exporter alone would not do:
//     a peer that can obtain evidence over arbitrary report data could be
//     asked for a report over the other side's exporter and reflect it.
//     The client also requires the fresh evidence to come from the same
//     TEE identity (TEE, measurement, host data, chip ID, and for TDX and
//     SGX the registers that sameIdentity lists) as the certificate's. In
//     TLS 1.3 the exporter derives from the handshake up to the server's
//     Finished message, which does not cover a client certificate, so in
//     the mutual challenge only that identity check ties the client's
//     fresh evidence to its certificate.
//   - The mutual challenge (ALPN protocol ProtoMutualChallenge) lets a
//     server in mutual mode challenge the client in turn. It is offered
//     before ProtoChallenge by servers that verify clients and by clients
//     that present a certificate, so that two such peers negotiate it and
//     a peer that supports only ProtoChallenge still agrees on that.
//
// The messages after the handshake are, with lengths in bytes and numbers
// big-endian:
//
//	ProtoChallenge:
//	 client -> server  "CRC1" (4), client nonce (32)
//	 server -> client  length (4), server response (1 to 1 MiB)
//	ProtoMutualChallenge:
//	 client -> server  "CRC2" (4), client nonce (32)
//	 server -> client  length (4), server response (1 to 1 MiB)
//	 server -> client  "CRS2" (4), server nonce (32)
//	 client -> server  length (4), client response (1 to 256 KiB)
//	 server -> client  verdict (1): 1 accepted, 0 rejected
//
// A response is the CBOR map {"format": text, "evidence": bstr, "aux":
// bstr (optional)}. The server's evidence carries the report data above,
// and the client's evidence carries SHA-512 of the same map with role
// "client" and the server's nonce, so that neither end's response can be
// reflected as the other's. The server verifies the client's evidence
// with the verifier and policy of the client certificates and requires
// the TEE identity of the client's certificate. Its verdict carries no
// reason, as a rejected certificate's alert carries none, and
// ServeMutualChallenge returns the reason to the server's caller. The
// client reads the server's nonce only after it has verified the server's
// response, so it spends no attestation on a server it rejects. The 256
// KiB bound matches the largest certificate message that crypto/tls reads
// (Go 1.26), so evidence that fits into a client certificate fits into
// the response. Each exchange must finish before the deadline of the
// caller's context, or within 30 seconds when it has none.
//
// Reflection across roles is rejected twice over: the role is attested,
// so a server certificate presented as a client certificate fails, and in
// mutual mode each end also rejects a peer presenting its own key.
//
// Without the challenge, a stolen certificate and key remain usable until
// the evidence exceeds MaxAge; the challenge closes that window at the
// cost of one attestation per connection, which is why it is negotiated
// rather than mandatory. A client in mutual mode that does not negotiate
// ProtoMutualChallenge is not challenged, so its stolen certificate and
// key stay usable for MaxAge (the agent's --client-max-age) unless the
// server requires the mutual challenge (the agent's --challenge-clients).
//
// # Performance
//
// A Verifier caches accepted results per certificate fingerprint until
// the evidence would exceed MaxAge (counted from the verification for
// undated evidence) or the certificate expires, so repeated handshakes
// with the same certificate cost a hash and a map lookup (see
// BENCHMARKS.md).
//
// No maintained Go module implements the DICE tagged-evidence certificate
// format or its verification over arbitrary TEE verifiers, so the
// extension codec is written here on top of fxamacker/cbor.
package ratls
