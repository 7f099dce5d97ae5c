package snp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/snpabi"
)

// oidKDS is the arc under which AMD's Key Distribution Service places the
// VCEK and VLEK certificate extensions (AMD "Versioned Chip Endorsement Key
// (VCEK) Certificate and KDS Interface Specification", publication 57230).
var oidKDS = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1}

// Arcs below oidKDS.
const (
	kdsStructVersion = 1 // INTEGER
	kdsProductName   = 2 // IA5String, such as "Milan-B0"
	kdsSPL           = 3 // 3.x: INTEGER security patch levels
	kdsHWID          = 4 // 64 bytes (8 on Turin), VCEK only
	kdsCSPID         = 5 // IA5String, VLEK only
)

// Endorsement is the AMD-specific content of a VCEK or VLEK certificate.
type Endorsement struct {
	Cert *x509.Certificate
	// Kind is "VCEK" or "VLEK", from the certificate's subject common name.
	Kind string
	// ProductName is the productName extension as written ("Milan-B0",
	// "Genoa"); Product is its product line ("Milan").
	ProductName string
	Product     string
	// SPL holds the security patch level extensions by their last arc:
	// 1 blSPL, 2 teeSPL, 3 snpSPL, 4 to 7 reserved, 8 ucodeSPL, 9 fmcSPL.
	SPL map[int]uint8
	// HWID is the chip ID the VCEK was issued for; nil for a VLEK.
	HWID []byte
	// CSPID names the cloud provider a VLEK was issued to.
	CSPID string
	Key   *ecdsa.PublicKey
}

// parseEndorsement reads the KDS extensions of a VCEK or VLEK certificate.
// It checks their encoding, the subject name and the P-384 key, and that a
// VCEK carries HWID and a VLEK carries CSP_ID.
func parseEndorsement(cert *x509.Certificate) (*Endorsement, error) {
	e := &Endorsement{Cert: cert, SPL: map[int]uint8{}}
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

	seen := map[string]bool{}
	for _, ext := range cert.Extensions {
		if len(ext.Id) <= len(oidKDS) || !ext.Id[:len(oidKDS)].Equal(oidKDS) {
			continue
		}
		id := ext.Id.String()
		if seen[id] {
			return nil, certError(cert, "extension %s appears twice", id)
		}
		seen[id] = true
		if err := e.setExtension(ext.Id[len(oidKDS):], ext.Value); err != nil {
			return nil, certError(cert, "extension %s: %v", id, err)
		}
	}

	if e.ProductName == "" {
		return nil, certError(cert, "productName extension (1.3.6.1.4.1.3704.1.2) is missing")
	}
	e.Product, _, _ = strings.Cut(e.ProductName, "-")
	for _, f := range snpabi.TCBLayout(e.Product) {
		if _, ok := e.SPL[f.SPLArc]; !ok {
			return nil, certError(cert, "%s security patch level extension (1.3.6.1.4.1.3704.1.3.%d) is missing", f.Name, f.SPLArc)
		}
	}
	switch e.Kind {
	case "VCEK":
		if e.HWID == nil {
			return nil, certError(cert, "VCEK has no hwid extension (1.3.6.1.4.1.3704.1.4)")
		}
		if e.CSPID != "" {
			return nil, certError(cert, "VCEK carries a CSP_ID extension, which only VLEKs have")
		}
	case "VLEK":
		if e.CSPID == "" {
			return nil, certError(cert, "VLEK has no CSP_ID extension (1.3.6.1.4.1.3704.1.5)")
		}
		if e.HWID != nil {
			return nil, certError(cert, "VLEK carries a hwid extension, which only VCEKs have")
		}
	}
	return e, nil
}

// setExtension stores one KDS extension, given the arcs after oidKDS.
func (e *Endorsement) setExtension(arcs asn1.ObjectIdentifier, value []byte) error {
	switch {
	case len(arcs) == 1 && arcs[0] == kdsStructVersion:
		_, err := parseUint8(value)
		return err
	case len(arcs) == 1 && arcs[0] == kdsProductName:
		s, err := parseIA5(value)
		e.ProductName = s
		return err
	case len(arcs) == 2 && arcs[0] == kdsSPL:
		v, err := parseUint8(value)
		e.SPL[arcs[1]] = v
		return err
	case len(arcs) == 1 && arcs[0] == kdsHWID:
		hwid, err := parseHWID(value)
		e.HWID = hwid
		return err
	case len(arcs) == 1 && arcs[0] == kdsCSPID:
		s, err := parseIA5(value)
		e.CSPID = s
		return err
	}
	return nil // Later KDS versions may add extensions; unknown ones carry no claim here.
}

func parseUint8(value []byte) (uint8, error) {
	var v int
	rest, err := asn1.Unmarshal(value, &v)
	switch {
	case err != nil:
		return 0, fmt.Errorf("not an INTEGER: %v", err)
	case len(rest) != 0:
		return 0, fmt.Errorf("%d bytes after the INTEGER", len(rest))
	case v < 0 || v > 255:
		return 0, fmt.Errorf("value %d is outside 0 to 255", v)
	}
	return uint8(v), nil
}

func parseIA5(value []byte) (string, error) {
	if len(value) == 0 || value[0] != asn1.TagIA5String {
		return "", fmt.Errorf("not an IA5String")
	}
	var s string
	rest, err := asn1.UnmarshalWithParams(value, &s, "ia5")
	if err != nil {
		return "", fmt.Errorf("not an IA5String: %v", err)
	}
	if len(rest) != 0 {
		return "", fmt.Errorf("%d bytes after the IA5String", len(rest))
	}
	return s, nil
}

// parseHWID accepts the hwid extension as AMD's KDS writes it (the raw chip
// ID bytes, without an ASN.1 tag) or as a DER OCTET STRING.
func parseHWID(value []byte) ([]byte, error) {
	if len(value) == snpabi.ChipIDSize || len(value) == snpabi.TurinHWIDSize {
		return value, nil
	}
	var octets []byte
	rest, err := asn1.Unmarshal(value, &octets)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("hwid is %d bytes, expected 64 (8 on Turin) raw bytes or an OCTET STRING", len(value))
	}
	if len(octets) != snpabi.ChipIDSize && len(octets) != snpabi.TurinHWIDSize {
		return nil, fmt.Errorf("hwid is %d bytes, expected 64 (8 on Turin)", len(octets))
	}
	return octets, nil
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
