// Package tpm verifies TPM 2.0 quotes. It checks the TPMS_ATTEST structure
// and its signature under an attestation key (AK), recomputes the PCR
// digest from the reported PCR values and compares the caller's nonce with
// extraData. When the evidence carries a TCG event log, it replays the log
// against the quoted PCRs.
//
// The AK is trusted in one of two ways. A caller that has the AK passes
// its public key in the collateral (the pinned AK), and the copy of the key in
// the evidence is then only compared with it. Otherwise the evidence must
// carry an AK certificate that chains, through intermediates from the
// evidence or the collateral, to a trusted root. Google's vTPM EK/AK roots
// are embedded, and they are used only when the caller supplies neither
// roots nor pinned AKs.
//
// Two evidence forms are accepted: the go-tpm-tools attest.Attestation
// protobuf (AK public area, one quote per PCR bank, event log, AK
// certificate) and the JSON document of the Trustee TPM attester (AK
// SubjectPublicKeyInfo and one quote with its SHA-256 PCR values).
//
// The TPM structures are decoded with go-tpm's tpm2 package and the event
// log is replayed with go-eventlog. The steps between them are written
// here because go-tpm-tools' server.VerifyAttestation stops at the first
// failure, tries the quotes until one passes and reports no per-step
// result, while Cloister records every check and verifies every quote.
//
// The Attester quotes /dev/tpmrm0 and adds the event log from
// EventLogPath. A missing log file means a machine without a measured
// boot, and the evidence goes without a log. A log file that exists but
// cannot be read fails the attestation with the path and the fix.
package tpm
