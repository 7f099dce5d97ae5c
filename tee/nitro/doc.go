// Package nitro verifies AWS Nitro Enclaves attestation documents and
// requests them from the Nitro Secure Module inside an enclave.
//
// An attestation document is a COSE_Sign1 message (with or without CBOR tag
// 18) signed with ES384. Its CBOR payload carries the enclave's PCRs, the
// signing certificate and the CA bundle that leads to the AWS Nitro Enclaves
// Root G1. Verification follows AWS's "Nitro Enclaves Attestation Process"
// (aws-nitro-enclaves-nsm-api, docs/attestation_process.md). It decodes
// strict CBOR (no duplicate keys, no indefinite lengths, no trailing bytes)
// and checks the field types and sizes of the specification. It then
// verifies the chain from the document certificate to the pinned root at
// the verification time, and the signature. github.com/veraison/go-cose
// decodes and verifies the envelope and github.com/fxamacker/cbor/v2 the
// payload. The field rules are written here because no maintained Go
// module checks them.
//
// Claims: Measurement is PCR0, every present PCR is a measurement named
// pcrN, Nonce is the nonce field, ReportData is user_data, and Debug is
// true when PCR0, PCR1 and PCR2 are all zero, which is how the Nitro
// hypervisor reports an enclave started in debug mode.
package nitro
