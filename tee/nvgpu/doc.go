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
// chain to the pinned NVIDIA Device Identity CA, the FWID of the leaf's TCG
// DICE TcbInfo extension against the report's FWID, and the nonce. The
// SPDM and opaque data parsers are written here because no maintained Go
// module decodes NVIDIA's reports.
//
// The measurement blocks are compared with NVIDIA's driver and VBIOS
// reference integrity manifests (RIMs) when the caller supplies them as
// collateral. A RIM is a SWID tag (ISO/IEC 19770-2) in XML with an
// enveloped XML-DSig signature, whose certificate chain ends at the pinned
// NVIDIA CoRIM signing Root CA. The signature is checked with
// github.com/russellhaering/goxmldsig, because the standard library has no
// XML canonicalisation (C14N 1.1) or XML-DSig. OCSP revocation of the device
// and RIM certificates needs NVIDIA's online service and is recorded as not
// checked.
package nvgpu
