package admin

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/printable"
	"github.com/cloister-dev/cloister/policy"
)

// referenceClaim is a byte-string claim that the default attestation policy
// compares with the reference values <tee>.<name>.
type referenceClaim struct {
	// field is the vendor's name of the field, for error messages.
	field string
	// sizes are the sizes in bytes that the TEE's verifier reports.
	sizes []int
}

// defaultPolicyHexClaims are the names that the default attestation policy
// reads for every TEE: input.claims.measurement, host_data and chip_id.
// It also reads <tee>.<name> for each name of input.claims.measurements.
// Every one of these claims is an attest.Hex, which prints as lower-case
// hex.
var defaultPolicyHexClaims = []string{"measurement", "host_data", "chip_id"}

// fixedReferenceClaims lists, for each TEE whose verifier reports a fixed
// set of byte-string claims, every claim that the default attestation
// policy compares with reference values. The names and sizes are those
// that tee/snp (newClaims), tee/dcap (addEnclaveClaims, addTDClaims) and
// tee/nitro (Verify) set. Other TEEs, such as psa, maa-token or composite,
// name their measurements after fields of the evidence, so for them only
// the hex form of measurement, host_data and chip_id is checked.
var fixedReferenceClaims = map[attest.TEE]map[string]referenceClaim{
	attest.TEESNP: {
		"measurement": {"SEV-SNP MEASUREMENT", []int{48}},
		"host_data":   {"SEV-SNP HOST_DATA", []int{32}},
		"chip_id":     {"SEV-SNP CHIP_ID", []int{64}},
	},
	attest.TEETDX: {
		"measurement":   {"TDX MRTD", []int{48}},
		"host_data":     {"TDX MRCONFIGID", []int{48}},
		"mrtd":          {"TDX MRTD", []int{48}},
		"rtmr0":         {"TDX RTMR[0]", []int{48}},
		"rtmr1":         {"TDX RTMR[1]", []int{48}},
		"rtmr2":         {"TDX RTMR[2]", []int{48}},
		"rtmr3":         {"TDX RTMR[3]", []int{48}},
		"mrseam":        {"TDX MRSEAM", []int{48}},
		"mrsignerseam":  {"TDX MRSIGNERSEAM", []int{48}},
		"mrconfigid":    {"TDX MRCONFIGID", []int{48}},
		"mrowner":       {"TDX MROWNER", []int{48}},
		"mrownerconfig": {"TDX MROWNERCONFIG", []int{48}},
		"mrservicetd":   {"TDX MRSERVICETD", []int{48}},
	},
	attest.TEESGX: {
		"measurement": {"SGX MRENCLAVE", []int{32}},
		"mrenclave":   {"SGX MRENCLAVE", []int{32}},
		"mrsigner":    {"SGX MRSIGNER", []int{32}},
	},
	attest.TEENitro: nitroReferenceClaims(),
}

// nitroReferenceClaims returns the claims of a Nitro attestation document:
// PCR0 as the measurement and PCR0 to PCR31 by name. AWS defines only
// SHA-384 PCRs, but tee/nitro accepts the sizes that the document format
// allows.
func nitroReferenceClaims() map[string]referenceClaim {
	sizes := []int{32, 48, 64}
	claims := map[string]referenceClaim{"measurement": {"Nitro PCR0", sizes}}
	for i := range 32 {
		claims["pcr"+strconv.Itoa(i)] = referenceClaim{fmt.Sprintf("Nitro PCR%d", i), sizes}
	}
	return claims
}

// DefaultPolicyNames returns the sorted reference value names of tee that
// the default attestation policy reads. It returns false for a TEE whose
// measurement names come from the evidence, for which no list is complete.
func DefaultPolicyNames(tee string) ([]string, bool) {
	claims, ok := fixedReferenceClaims[attest.TEE(tee)]
	if !ok {
		return nil, false
	}
	names := make([]string, 0, len(claims))
	for name := range claims {
		names = append(names, tee+"."+name)
	}
	sort.Strings(names)
	return names, true
}

// CheckReferenceValue checks a reference value before it is stored and
// returns the value to store. The name must be <tee>.<claim>, with a TEE
// that selects an attestation policy. The default attestation policy
// compares some claims as byte strings, so their values must be hex, of the
// claim's size where fixedReferenceClaims lists it. Such a value is
// returned in lower case without a 0x prefix, the form in which the claims
// print.
//
// Other claim names under a known TEE are accepted unchanged, because a
// stored attestation policy may read reference values of any name, such as
// sgx.isvprodid. Also, psa, cca, maa-token and composite claims carry
// measurement names taken from the evidence, which no list here can
// contain. cloister refvalue add warns about a name that DefaultPolicyNames
// does not list.
func CheckReferenceValue(name, value string) (string, error) {
	tee, claimName, ok := strings.Cut(name, ".")
	if !ok || tee == "" || claimName == "" {
		return "", fmt.Errorf("invalid reference value name %q: name it <tee>.<claim>, such as snp.measurement, with a TEE of %s",
			name, teeNames())
	}
	if !policy.IsAttestationTEE(tee) {
		return "", fmt.Errorf("invalid reference value name %q: %q is not a known TEE; name it <tee>.<claim>, such as snp.measurement, with a TEE of %s",
			name, tee, teeNames())
	}
	claims, fixedTEE := fixedReferenceClaims[attest.TEE(tee)]
	claim, listed := claims[claimName]
	switch {
	case listed:
		// The value is checked below against the claim's sizes.
	case !slices.Contains(defaultPolicyHexClaims, claimName):
		return value, nil
	case fixedTEE:
		names, _ := DefaultPolicyNames(tee)
		return "", fmt.Errorf("invalid reference value name %q: %s claims have no %s, so the default attestation policy would reject every %s attestation while %s has values; use one of %s",
			name, tee, claimName, tee, name, strings.Join(names, ", "))
	default:
		claim = referenceClaim{field: tee + " " + claimName}
	}

	hexValue := value
	if len(hexValue) >= 2 && (hexValue[:2] == "0x" || hexValue[:2] == "0X") {
		hexValue = hexValue[2:]
	}
	b, err := hex.DecodeString(hexValue)
	switch {
	case err != nil || len(b) == 0:
		return "", fmt.Errorf("invalid reference value %s = %s: %s; give %s", name, quoteValue(value), hexProblem(err), claim.describe())
	case len(claim.sizes) > 0 && !slices.Contains(claim.sizes, len(b)):
		return "", fmt.Errorf("invalid reference value %s = %s: %d hex digits; give %s", name, quoteValue(value), len(hexValue), claim.describe())
	}
	return strings.ToLower(hexValue), nil
}

// describe returns the fix of an invalid value of c, such as "the SEV-SNP
// MEASUREMENT as 96 hex digits (48 bytes)".
func (c referenceClaim) describe() string {
	if len(c.sizes) == 0 {
		return "the " + c.field + " as hex digits, two for each byte"
	}
	digits := make([]string, len(c.sizes))
	byteCounts := make([]string, len(c.sizes))
	for i, size := range c.sizes {
		digits[i], byteCounts[i] = strconv.Itoa(2*size), strconv.Itoa(size)
	}
	return fmt.Sprintf("the %s as %s hex digits (%s bytes)", c.field, orList(digits), orList(byteCounts))
}

// orList joins items as "a", "a or b" or "a, b or c".
func orList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// hexProblem returns what is wrong with a value that hex.DecodeString
// rejected with err, or that decoded to no bytes.
func hexProblem(err error) string {
	var invalid hex.InvalidByteError
	switch {
	case err == nil:
		return "the value has no hex digits"
	case errors.As(err, &invalid):
		return fmt.Sprintf("%q is not a hex digit", rune(invalid))
	case errors.Is(err, hex.ErrLength):
		return "the value has an odd number of hex digits"
	}
	return err.Error()
}

// normalizeReferenceValue returns value in the form CheckReferenceValue
// stores it, or unchanged when CheckReferenceValue rejects it.
func normalizeReferenceValue(name, value string) string {
	if v, err := CheckReferenceValue(name, value); err == nil {
		return v
	}
	return value
}

// maxQuotedValue is the longest value that an error message quotes whole.
const maxQuotedValue = 160

// quoteValue quotes value for an error message, shortened when it is long.
func quoteValue(value string) string {
	return printable.Quote(value, maxQuotedValue)
}

// teeNames returns the TEEs that select an attestation policy, separated
// by commas.
func teeNames() string {
	tees := policy.AttestationTEEs()
	names := make([]string, len(tees))
	for i, t := range tees {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}
