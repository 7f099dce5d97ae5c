// Package cose contains the COSE and CBOR handling that the Arm PSA and CCA
// verifiers share. It provides a strict CBOR decoding mode, COSE_Sign1
// decoding and verification with an algorithm allow-list, and the loading of
// the public keys a caller supplies as trust anchors (PEM
// SubjectPublicKeyInfo or JWK).
//
// COSE parsing and signature checks come from github.com/veraison/go-cose
// and CBOR decoding from github.com/fxamacker/cbor/v2. This package adds only
// what they leave to the caller: rejecting duplicate map keys, indefinite
// lengths, tags and trailing bytes in claims sets, and checking that the
// signing algorithm matches the key's curve.
package cose
