package kbs

import (
	"strings"

	"github.com/cloister-dev/cloister/ear"
)

// auditDevices returns the store.AuditRecord.Devices text of result, with
// one entry for each appraisal other than cpu0, in name order. An entry
// holds the submodule name, the verifier's TEE name, the evidence and
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
