package azurevtpm

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/tpm"
)

// userDataSize is the size of the HCL user data: 64 bytes, sent as 128 hex
// digits in the runtime data's user-data member.
const userDataSize = 64

// CheckRuntimeDigest checks that Azure vTPM evidence binds digest, the
// runtime-data digest of a Trustee KBS session, as Trustee guests place it:
//
//   - the vTPM quote's extraData (qualifying data) equals digest exactly,
//     without padding;
//   - for evidence version 2 and later, the runtime data's user-data is
//     the hex encoding of 64 bytes that start with digest and are zero
//     after it;
//   - the first 32 bytes of the hardware report data equal the SHA-256 of
//     the HCL runtime data, which is how the hardware vouches for it.
//
// Each failure is an *attest.Error naming the field.
//
// data is the evidence JSON that produced c, and c the claims of a
// successful Verify, whose ReportData is the verified hardware report
// data. reportType is ReportTypeSNP or ReportTypeTDX: the VM type that the
// caller's session declared. CheckRuntimeDigest verifies no signature, so
// it proves nothing about evidence that Verify has not accepted.
func CheckRuntimeDigest(c *attest.Claims, data []byte, reportType uint32, digest []byte) error {
	ev, err := ParseEvidence(data)
	if err != nil {
		return err
	}
	hcl, err := ParseHCLReport(ev.HCLReport)
	if err != nil {
		return err
	}
	if hcl.ReportType != reportType {
		return attest.Errorf(attest.ErrBinding, "hcl_report.report_type", "the HCL report is of another VM type than the session declared").
			WithValues(reportTypeName(hcl.ReportType), reportTypeName(reportType)).
			WithFix("request the session with the tee of this VM: az-snp-vtpm for SEV-SNP, az-tdx-vtpm for TDX")
	}

	if err := checkQuoteExtraData(ev.Quote, digest); err != nil {
		return err
	}
	if ev.Version >= 2 {
		rd, err := ParseRuntimeData(hcl.VariableData)
		if err != nil {
			return err
		}
		if err := checkUserData(rd.UserData, digest); err != nil {
			return err
		}
		c.Pass(CheckUserData)
	} else {
		// The version field is not signed, so the skip is recorded: the
		// vTPM quote's extraData above still binds the digest.
		c.Skip(CheckUserData, false, fmt.Sprintf("evidence version %d carries no runtime-data digest in the HCL user data; the vTPM quote's nonce binds it", ev.Version))
	}
	return checkVariableDataDigest(c, hcl)
}

// checkQuoteExtraData requires the vTPM quote's extraData to equal digest.
func checkQuoteExtraData(q tpm.Quote, digest []byte) error {
	a, err := tpm.ParseAttest(q.Message)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(a.Nonce(), digest) != 1 {
		return attest.Errorf(attest.ErrBinding, "tpm_quote.message.extraData", "the vTPM quote's qualifying data is not this session's runtime-data digest").
			WithValues(hex.EncodeToString(a.Nonce()), hex.EncodeToString(digest)).
			WithFix("pass the runtime-data digest, unpadded, as the vTPM quote nonce")
	}
	return nil
}

// checkUserData requires userData, hex of 64 bytes, to be digest followed
// by zeros. Trustee guests write upper-case hex. Lower case is accepted as
// well because the value, not its spelling, is what the hardware binds.
func checkUserData(userData string, digest []byte) error {
	const field = "hcl_report.variable_data.user-data"
	b, err := hex.DecodeString(userData)
	if err != nil {
		return attest.Malformed(field, "is not hexadecimal", err)
	}
	if len(b) != userDataSize {
		return attest.Malformed(field, fmt.Sprintf("is %d bytes, not %d", len(b), userDataSize), nil)
	}
	if len(digest) > userDataSize {
		return attest.Errorf(attest.ErrBinding, field, "the %d-byte runtime-data digest does not fit in the %d bytes of user data", len(digest), userDataSize).
			WithFix("select a hash of at most 64 bytes for the runtime data")
	}

	want := make([]byte, userDataSize)
	copy(want, digest)
	if subtle.ConstantTimeCompare(b, want) != 1 {
		reason := "the HCL user data does not start with this session's runtime-data digest"
		if bytes.Equal(b[:len(digest)], digest) {
			reason = "the HCL user data is not zero after the runtime-data digest"
		}
		return attest.Errorf(attest.ErrBinding, field, "%s", reason).
			WithValues(userData, hex.EncodeToString(want)).
			WithFix("pass the runtime-data digest, zero-padded to 64 bytes, as the HCL user data")
	}
	return nil
}

// checkVariableDataDigest requires the first 32 bytes of the hardware
// report data to be the SHA-256 of the HCL runtime data. Verify checks a
// prefix with the hash that the HCL report names. This repeats the check
// with SHA-256, the hash Trustee guests use, so that the binding does not
// rest on an unsigned header field.
func checkVariableDataDigest(c *attest.Claims, hcl *HCLReport) error {
	sum := sha256.Sum256(hcl.VariableData)
	if len(c.ReportData) < len(sum) || subtle.ConstantTimeCompare(c.ReportData[:len(sum)], sum[:]) != 1 {
		return attest.Errorf(attest.ErrBinding, "report data", "the hardware report data does not start with the SHA-256 of the HCL runtime data").
			WithValues(c.ReportData.String(), hex.EncodeToString(sum[:])+" in the first 32 bytes").
			WithFix("send the HCL report unmodified, as the paravisor produced it")
	}
	return nil
}

func reportTypeName(t uint32) string {
	switch t {
	case ReportTypeSNP:
		return "SEV-SNP (2)"
	case ReportTypeTDX:
		return "TDX (4)"
	}
	return fmt.Sprintf("unknown (%d)", t)
}
