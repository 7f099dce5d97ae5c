// Package azurevtpm verifies the evidence of an Azure confidential VM. The
// evidence contains the HCL report and a quote of the VM's vTPM. The hardware
// report inside the HCL report (an SEV-SNP attestation report, or a TDX
// TDREPORT backed by a TD quote) binds the HCL runtime data, and the
// runtime data names the attestation key that signs the vTPM quote
// (HCLAkPub).
//
// The chain of trust is: vendor root → hardware report → report data,
// which is the hash of the runtime data → HCLAkPub → vTPM quote → PCRs and
// the caller's nonce. The hardware report is verified by the verifier
// registered as "snp" or "dcap", looked up at run time so that this
// package does not depend on either. The vTPM quote is verified with the
// tpm package.
//
// The HCL report layout is Microsoft's (the IGVM attestation request of
// the paravisor, also decoded by the az-cvm-vtpm crate): a 32-byte header
// starting "HCLA", the 1184-byte hardware report area, then the IGVM
// request data header and the runtime data. No Go library decodes it, so
// it is decoded here.
//
// CheckRuntimeDigest applies the binding of a Trustee KBS session on top of
// Verify: Trustee guests put the runtime-data digest in the vTPM quote
// nonce and, from evidence version 2, in the HCL user data.
package azurevtpm
