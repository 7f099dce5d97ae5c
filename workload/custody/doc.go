// Package custody is a key custody workload: signing keys are generated
// inside the TEE, persisted only sealed, and used through a signing API
// over RA-TLS under a per-key authorization policy. No endpoint returns a
// private key; only public keys are exported.
//
// Key types: Ed25519 (RFC 8032, signing the message itself), ECDSA P-256
// and ECDSA secp256k1, both signing SHA-256 of the message and returning
// an ASN.1 DER signature. secp256k1 uses github.com/decred/dcrd/dcrec/
// secp256k1/v4, which signs with RFC 6979 nonces and low S values.
//
// # Sealing
//
// Each key is sealed with AES-256-GCM under a 32-byte sealing key, with the
// key's name, type and public key as additional data, so that a sealed
// file cannot be renamed to another key or paired with another public
// key. The sealing key is a key broker resource (Manifest.SealingKey)
// that the broker's resource policy releases only to this workload's
// launch measurement and manifest digest (see ReleasePolicy). Open
// fetches it with the KBS protocol, unseals or generates every key of the
// manifest, and then drops it, so a restarted workload needs the broker
// again.
//
// # Authorization
//
// The manifest is bound to the TEE through HOST_DATA like every workload
// of package workload, so the parties see the authorization policy before
// they trust a public key. For each key it lists the parties that may
// sign and, optionally, the prefixes a message must start with.
//
// # Pinned public keys
//
// The additional data of a sealed file binds the key's name, type and
// public key but not the manifest digest, so that a manifest with other
// parties or pins still opens the same files. A file sealed under the
// same sealing key for a key of the same name and type therefore opens
// too. Without pins, a host that removes every sealed file gets new keys
// on the next start, and a host that kept the files of an earlier start
// can swap them in.
//
// A key's PublicKey in the manifest pins it: Open never generates a
// pinned key, and fails when its sealed file is missing or contains
// another key. Because the pins are part of the manifest, the parties
// see them in the verified manifest digest. To pin the keys, start
// without pins and read the public keys from the verified workload with
// Client.PublicKeys, or print the pinned manifest with cloister custody
// keys --pinned-manifest (Manifest.PinPublicKeys). Then set the broker's
// release policy to the new manifest's digest only, and restart with the
// pinned manifest.
package custody
