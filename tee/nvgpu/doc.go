// Package nvgpu verifies NVIDIA GPU confidential-computing evidence
// (Hopper and later).
//
// A GPU attests with an SPDM 1.1 GET_MEASUREMENTS exchange (DMTF DSP0274).
// The verifier's request carries a 32-byte nonce. The GPU's MEASUREMENTS
// response carries the measurement blocks, a responder nonce, NVIDIA's
// opaque data (driver and VBIOS versions, the FWID) and an ECDSA P-384
// signature over SHA-384 of the request and the response up to the
// signature. The evidence is the hexadecimal text of that exchange for one
// GPU, or a JSON array with one entry per GPU and its certificate chain.
//
// Verification checks the signature under the device leaf certificate, the
// chain to the pinned NVIDIA Device Identity CA, the key usages of the
// chain (digitalSignature on the leaf, CA:TRUE and keyCertSign on every
// issuer, as NVIDIA's certificates carry them), the FWID of the leaf's TCG
// DICE TcbInfo extension against the report's FWID, and the nonce. The
// SPDM and opaque data parsers are written here because no maintained Go
// module decodes NVIDIA's reports.
//
// The measurement blocks are compared with NVIDIA's driver and VBIOS
// reference integrity manifests (RIMs) when the caller supplies them as
// collateral. A RIM is a SWID tag (ISO/IEC 19770-2) in XML with an
// enveloped XML-DSig signature, whose certificate chain ends at the pinned
// NVIDIA CoRIM signing Root CA. The chain must carry the same key usages as
// the device chain: digitalSignature on the signing certificate, CA:TRUE
// and keyCertSign on every issuer. The signature is checked with
// github.com/russellhaering/goxmldsig, because the standard library has no
// XML canonicalisation (C14N 1.1) or XML-DSig.
//
// The certificates below the root of the device chain and of each applied
// RIM's signing chain are checked for revocation with OCSP responses (RFC
// 6960) from the collateral, which an online collateral source fetches from
// each certificate's responder. Cloister reads the status from the
// SingleResponse whose whole CertID, issuer hashes included, names the
// certificate, wherever it is in the response. It accepts only a signature
// by the issuer or by a responder it delegated, which
// golang.org/x/crypto/ocsp checks. The device leaf certificate needs no
// response, because the GPU issues it. The ocsp check passes only when
// every other certificate has a current good response. It fails on a
// revoked (certificateHold included), unknown, ambiguous or invalid
// response, or when a certificate's responses are all expired. It is not
// checked while a certificate has none, or only responses produced after
// the verification time, unless one of them revokes the certificate at or
// before that time. No OCSP nonce is sent, so a
// response proves freshness by its thisUpdate and nextUpdate alone. A
// response without nextUpdate is current for 12 hours after its thisUpdate
// (collateral.OCSPValidityWithoutNextUpdate).
//
// NVMLAttester collects the evidence of real GPUs through NVML
// (github.com/NVIDIA/go-nvml, which needs cgo) in a binary built with the
// nvml build tag, in the form that Emulator writes. Its SetReady sets the
// GPUs' ready state, which a caller does only after a verifier accepted
// their evidence. Without the tag, OpenNVML and the attester return
// ErrNVMLNotBuilt, so that the default build stays free of cgo.
package nvgpu
