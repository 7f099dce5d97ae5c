// Package dcap verifies Intel DCAP quotes offline: SGX quotes of version 3
// and 4, and TDX quotes of version 4 and 5 (TDX 1.0 and 1.5 TD report
// bodies). It checks them against the Intel SGX Root CA and Intel PCS
// collateral (TCB Info, QE Identity, PCK CRL, Root CA CRL). It derives the
// TCB status by Intel's matching rules and reports it in the claims, and
// leaves judging the status and the debug bit to the appraise package.
//
// Everything here is Cloister's own code, because no maintained Go module
// verifies SGX quotes. google/go-tdx-guest, at the version in go.mod,
// parses only TDX quote version 4 and returns an error for every TCB and QE
// status other than UpToDate instead of reporting it, so none of its
// verify or pcs code is used. Its client package collects TDX quotes on
// hardware (attester.go).
//
// Verification steps, each at the verification time:
//
//  1. Parse the quote; every length is checked against the buffer. The
//     header must name Intel's QE vendor ID.
//  2. Verify the PCK chain from the quote's certification data to the
//     Intel SGX Root CA (embedded and pinned by fingerprint) or to the
//     caller's root, checking every link's signature explicitly. The path
//     must be PCK certificate, PCK CA and root, as Intel issues it.
//  3. Verify the QE report signature under the PCK key, the QE report's
//     binding of the attestation key, and the quote signature.
//  4. Check the PCK CRL and the Root CA CRL: signature, thisUpdate and
//     nextUpdate, revocation.
//  5. Verify the TCB Info and QE Identity signatures and chains, their
//     issueDate and nextUpdate, match their FMSPC, PCE ID and QE values,
//     and evaluate the TCB status (tcb.go).
//  6. For TDX, replay the guest's CC event log (Evidence.Aux), when given,
//     into RTMR0 to RTMR3 and require the quote's values (ccel.go). Its
//     measured events become the event_log claim.
//
// The claims attribute tcb_evaluation_data_number is the lower of the
// tcbEvaluationDataNumber values of the TCB Info and the QE Identity used,
// as QVL reports tcb_eval_num. The verifier requires no minimum: the
// appraise package applies one when the caller sets
// appraise.Options.MinTCBEvaluationDataNumber, as Intel's Appraisal Engine
// applies a policy's min_eval_num.
//
// Missing collateral is recorded as a required check that did not run,
// so that the default appraisal rejects the evidence and names what is
// missing. Verified chains, CRL and collateral signatures and parsed
// collateral are cached by digest or by parsed input, but failures never
// are. A warm verification therefore costs little more than the two ECDSA
// verifications of the QE report and the quote.
//
// TCB Info versions 3 (SGX and TDX) and 2 (SGX) and QE Identity version 2
// are accepted. Emulator produces quotes in the same formats from a local
// development root (emulator.go); TDXAttester and SGXAttester collect
// quotes on hardware.
//
// Both TDX attesters return the quote alone from Attest, because RA-TLS
// certificates carry Evidence.Aux. Their EventLog methods
// (attest.EventLogger) return the guest's CC event log: TDXAttester reads
// it from CCELPath and cuts off the padding after the last event
// (attester_ccel.go). The KBS client puts it into Evidence.Aux of its
// attestation request.
package dcap
