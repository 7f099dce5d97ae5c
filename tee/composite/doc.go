// Package composite verifies a CPU TEE report and the reports of one or
// more NVIDIA GPUs as one piece of evidence, registered as "composite".
//
// # Format
//
// Composite evidence is a JSON object:
//
//	{
//	  "cpu": {
//	    "format":   "snp",             // optional verifier name; detected when empty
//	    "evidence": "<base64>",        // the raw report or quote
//	    "aux":      "<base64>"         // optional, such as the SEV-SNP certificate table
//	  },
//	  "gpus": [
//	    "<hex report text>",           // a report alone; its chain comes from the collateral
//	    {"attestationReportHexStr": "<hex>", "certChainBase64Encoded": "<base64 PEM>"},
//	    {"evidence": "<hex or base64>", "certificate": "<base64 PEM>", "arch": "HOPPER", "uuid": "GPU-..."}
//	  ]
//	}
//
// Each element of "gpus" is one GPU in a form that the nvidia-gpu verifier
// reads: the hexadecimal text of the SPDM GET_MEASUREMENTS exchange, or an
// entry as the NVIDIA attestation SDK or Trustee's attester writes it. The
// CPU report is base64 because SEV-SNP reports and DCAP quotes are binary.
// This shape keeps each part exactly as its attester produced it, so that
// each part verifies with its own verifier, and it mirrors Trustee's
// composite evidence (one primary TEE plus additional devices) in a single
// file that `cloister verify` can read.
//
// # Binding
//
// Every GPU's SPDM requester nonce must equal the first 32 bytes of the CPU
// report's report data (SEV-SNP REPORT_DATA, TDX and SGX REPORTDATA). The
// guest chooses one 32-byte value, requests each GPU report with it as the
// nonce and places it at the start of the CPU report data, so a GPU
// report cannot be replayed beside another CPU attestation. The remaining
// 32 bytes of the report data stay free for the caller, such as a hash of
// a key. The rule copies the GPU nonce into the report data, not a hash
// of it, so that an existing GPU report can be bound by choosing the CPU
// report data: `cloister emulate snp --report-data <nonce>` produces a
// matching emulated CPU report.
//
// # Claims
//
// The claims are the CPU's, with TEE "composite" and the CPU's TEE in
// Attributes["cpu_tee"], so that no policy mistakes composite evidence for
// a plain CPU report. Measurement, report data, TCB and chain are the
// CPU's. Attributes["gpus"] lists each GPU's claims; each GPU's checks are
// added with a "gpuN/" prefix, so that checks a GPU could not run (OCSP,
// reference integrity manifests) stay visible, and each GPU's FWID is
// added to Measurements as "gpuN/fwid". Debug and Emulated are true when
// any part is.
//
// Every part verifies with the same attest.Options: time, collateral and
// trust anchors. A caller's Options.Nonce goes to the CPU verifier; the
// GPUs are checked against the binding value instead.
//
// Because the claims contain the CPU's attributes, appraise.Options.MaxVMPL
// and MinTCBEvaluationDataNumber apply to the CPU part as to a plain CPU
// report (appraise.HardwareTEE reads cpu_tee).
package composite
