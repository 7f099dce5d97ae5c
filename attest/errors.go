package attest

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors for each kind of failure. An *Error matches exactly one of
// them with errors.Is, so a caller can tell malformed input from a bad
// signature, an untrusted chain or an appraisal failure.
var (
	// ErrMalformed reports evidence or collateral that does not parse.
	ErrMalformed = errors.New("malformed")
	// ErrUnsupported reports a well-formed input of a version, algorithm or
	// format that Cloister does not verify.
	ErrUnsupported = errors.New("unsupported")
	// ErrSignature reports a signature that does not verify.
	ErrSignature = errors.New("invalid signature")
	// ErrChain reports a certificate chain that does not lead to a trusted
	// root, or a certificate outside its validity window.
	ErrChain = errors.New("untrusted certificate chain")
	// ErrRevoked reports a certificate listed in a CRL.
	ErrRevoked = errors.New("revoked")
	// ErrCollateralMissing reports collateral that verification needs and
	// that the caller did not supply.
	ErrCollateralMissing = errors.New("collateral missing")
	// ErrCollateralExpired reports collateral (CRL, TCB Info, QE Identity)
	// outside its issue and next-update times at the verification time,
	// or an NVIDIA RIM whose signing certificates are outside their
	// validity windows.
	ErrCollateralExpired = errors.New("collateral expired")
	// ErrExpired reports evidence that carries its own validity period,
	// such as a token's exp and nbf, and is outside it at the
	// verification time.
	ErrExpired = errors.New("evidence expired")
	// ErrBinding reports evidence whose report data or nonce does not bind
	// the value it must bind (a key, runtime data or a caller's nonce).
	ErrBinding = errors.New("binding mismatch")
	// ErrAppraisal reports verified evidence that the appraisal policy
	// rejects (debug, TCB status, measurement, emulated TEE).
	ErrAppraisal = errors.New("appraisal failed")
)

// Error is a verification or appraisal failure that names the field, the
// value seen, the value expected and what the user can do about it.
type Error struct {
	// Kind is one of the sentinel errors above.
	Kind error
	// Field is the evidence or collateral field that failed, in the
	// specification's terms (for example "REPORT_DATA" or "tcbInfo.fmspc").
	Field string
	// Reason describes the failure in plain words.
	Reason string
	// Value and Expected are the value seen and the value required, when
	// they are meaningful.
	Value, Expected string
	// Fix is what the user can do next.
	Fix string
	// Err is the underlying error, if any.
	Err error
}

// Error formats the failure as "kind: field: reason (value ..., expected ...):
// cause; fix".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	switch {
	case e.Value != "" && e.Expected != "":
		fmt.Fprintf(&b, " (value %s, expected %s)", e.Value, e.Expected)
	case e.Value != "":
		fmt.Fprintf(&b, " (value %s)", e.Value)
	case e.Expected != "":
		fmt.Fprintf(&b, " (expected %s)", e.Expected)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Malformed returns an ErrMalformed error for field.
func Malformed(field, reason string, err error) *Error {
	return &Error{Kind: ErrMalformed, Field: field, Reason: reason, Err: err,
		Fix: "check that the file is the evidence itself, complete and unmodified"}
}

// Errorf returns an *Error of the given kind with a formatted reason.
func Errorf(kind error, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// WithFix returns e with Fix set, for chaining at the point of construction.
func (e *Error) WithFix(fix string) *Error {
	e.Fix = fix
	return e
}

// WithValues returns e with Value and Expected set.
func (e *Error) WithValues(value, expected string) *Error {
	e.Value, e.Expected = value, expected
	return e
}

// KindName returns a short stable name for the kind of err ("signature",
// "chain", ...), or "error" when err is not a Cloister error. JSON output and
// metrics use it as a label.
func KindName(err error) string {
	for _, k := range []struct {
		sentinel error
		name     string
	}{
		{ErrMalformed, "malformed"},
		{ErrUnsupported, "unsupported"},
		{ErrSignature, "signature"},
		{ErrChain, "chain"},
		{ErrRevoked, "revoked"},
		{ErrCollateralMissing, "collateral_missing"},
		{ErrCollateralExpired, "collateral_expired"},
		{ErrExpired, "expired"},
		{ErrBinding, "binding"},
		{ErrAppraisal, "appraisal"},
	} {
		if errors.Is(err, k.sentinel) {
			return k.name
		}
	}
	return "error"
}
