package snp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/snpabi"
)

// Endorsement is the AMD-specific content of a VCEK or VLEK certificate.
type Endorsement struct {
	Cert *x509.Certificate
	// Kind is "VCEK" or "VLEK", from the certificate's subject common name.
	Kind string
	// KDSExtensions contains the product name, security patch levels and
	// hwid or CSP_ID read from the certificate's KDS extensions.
	snpabi.KDSExtensions
	Key *ecdsa.PublicKey
}

// parseEndorsement reads the KDS extensions of a VCEK or VLEK certificate.
// It checks their encoding, the subject name and the P-384 key, and that a
// VCEK carries HWID and a VLEK carries CSP_ID.
func parseEndorsement(cert *x509.Certificate) (*Endorsement, error) {
	e := &Endorsement{Cert: cert}
	switch cert.Subject.CommonName {
	case "SEV-VCEK":
		e.Kind = "VCEK"
	case "SEV-VLEK":
		e.Kind = "VLEK"
	default:
		return nil, certError(cert, "subject common name %q is neither SEV-VCEK nor SEV-VLEK", cert.Subject.CommonName)
	}
	key, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P384() {
		return nil, certError(cert, "%s public key is not ECDSA P-384", e.Kind)
	}
	e.Key = key

	ext, err := snpabi.ParseKDSExtensions(cert.Extensions, e.Kind)
	if err != nil {
		return nil, certError(cert, "%s", err.Error())
	}
	e.KDSExtensions = *ext
	return e, nil
}

// reportedTCBMismatch compares the certified security patch levels with a
// report's REPORTED_TCB and describes the first difference, or returns "".
func (e *Endorsement) reportedTCBMismatch(reportedTCB uint64) string {
	for _, f := range snpabi.TCBLayout(e.Product) {
		if got, want := snpabi.TCBByte(reportedTCB, f.Byte), uint64(e.SPL[f.SPLArc]); got != want {
			return fmt.Sprintf("%s is %d in REPORTED_TCB but %d in the %s certificate", f.Name, got, want, e.Kind)
		}
	}
	bytes, arcs := snpabi.ReservedTCBBytes(e.Product)
	for i, b := range bytes {
		want := uint64(0)
		if i < len(arcs) {
			want = uint64(e.SPL[arcs[i]])
		}
		if got := snpabi.TCBByte(reportedTCB, b); got != want {
			return fmt.Sprintf("reserved byte %d is %d in REPORTED_TCB but %d in the %s certificate", b, got, want, e.Kind)
		}
	}
	return ""
}

// certifiedTCB returns the TCB_VERSION the certificate's extensions encode.
func (e *Endorsement) certifiedTCB() uint64 {
	var tcb uint64
	for _, f := range snpabi.TCBLayout(e.Product) {
		tcb |= uint64(e.SPL[f.SPLArc]) << (8 * f.Byte)
	}
	bytes, arcs := snpabi.ReservedTCBBytes(e.Product)
	for i := range arcs {
		tcb |= uint64(e.SPL[arcs[i]]) << (8 * bytes[i])
	}
	return tcb
}

// certError returns an ErrChain error about cert.
func certError(cert *x509.Certificate, format string, args ...any) *attest.Error {
	return attest.Errorf(attest.ErrChain, "certificate "+cert.Subject.CommonName, format, args...).
		WithFix("pass the VCEK or VLEK certificate that AMD's KDS issued for this report's platform")
}
