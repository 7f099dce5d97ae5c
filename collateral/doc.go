// Package collateral holds the vendor collateral that verification needs
// besides the evidence: certificates, CRLs, Intel TCB Info and QE Identity
// documents, public keys and JWKS documents.
//
// A Set is loaded from files identified by their content, never by their
// names, so that any directory of PEM, DER and JSON files works as an offline
// bundle. A Source is the seam through which a verifier asks for collateral;
// *Set is the offline Source, and online fetchers implement the same
// interface.
package collateral
