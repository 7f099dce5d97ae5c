package kbs

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/cloister-dev/cloister/ear"
)

// auditDevices returns the store.AuditRecord.Devices text of result, with
// one entry for each appraisal other than cpu0, in name order. An entry
// contains the submodule name, the verifier's TEE name, the evidence and
// policy digests, the status and an "emulated" label for emulated
// evidence. It returns "" for a result with cpu0 only without allocating,
// because that is every attestation without device evidence. Every value
// comes from the token's own appraisal, so the record and the token can be
// compared.
func auditDevices(result *ear.Result) string {
	if len(result.Submods) < 2 {
		return ""
	}
	var b strings.Builder
	for _, name := range deviceNames(result) {
		a := result.Submods[name]
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(name)
		var emulated bool
		if a.KeyClaims != nil {
			b.WriteString(" " + a.KeyClaims.TEE)
			emulated = a.KeyClaims.Emulated
		}
		if a.Digests != nil {
			b.WriteString(" evidence=" + a.Digests.Evidence + " policy=" + a.Digests.Policy)
		}
		b.WriteString(" status=" + string(a.Status))
		if emulated {
			b.WriteString(" emulated")
		}
	}
	return b.String()
}

// deviceError is the error of a device whose evidence did not decode or
// was rejected by its verifier or its binding check. devices is the
// store.AuditRecord.Devices text of the deny record: the devices
// appraised before it, as auditDevices writes them, and then this device
// with the digest of its evidence, when it decoded, and status=rejected.
type deviceError struct {
	devices string
	err     error
}

func (e *deviceError) Error() string { return e.err.Error() }
func (e *deviceError) Unwrap() error { return e.err }

// newDeviceError returns the deviceError of the device name, whose KBS tee
// is tee and whose decoded evidence is evidence (nil when it did not
// decode), after the devices already in result.
func newDeviceError(result *ear.Result, name, tee string, evidence []byte, err error) *deviceError {
	var b strings.Builder
	if earlier := auditDevices(result); earlier != "" {
		b.WriteString(earlier + "; ")
	}
	b.WriteString(name + " " + formatForTEE(tee))
	if evidence != nil {
		sum := sha256.Sum256(evidence)
		b.WriteString(" evidence=" + hex.EncodeToString(sum[:]))
	}
	b.WriteString(" status=rejected")
	return &deviceError{devices: b.String(), err: err}
}
