package snpabi

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// OIDKDS is the arc under which AMD's Key Distribution Service places the
// VCEK and VLEK certificate extensions (AMD "Versioned Chip Endorsement Key
// (VCEK) Certificate and KDS Interface Specification", publication 57230).
var OIDKDS = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1}

// Arcs below OIDKDS.
const (
	KDSStructVersion = 1 // INTEGER
	KDSProductName   = 2 // IA5String, such as "Milan-B0"
	KDSSPL           = 3 // 3.x: INTEGER security patch levels
	KDSHWID          = 4 // 64 bytes (8 on Turin), VCEK only
	KDSCSPID         = 5 // IA5String, VLEK only
)

// KDSExtensions is the content of the AMD KDS extensions of a VCEK or VLEK
// certificate.
type KDSExtensions struct {
	// ProductName is the productName extension as written ("Milan-B0",
	// "Genoa"), and Product is its product line ("Milan").
	ProductName string
	Product     string
	// SPL maps the last arc of each security patch level extension to its
	// value. The arcs are 1 blSPL, 2 teeSPL, 3 snpSPL, 4 to 7 reserved,
	// 8 ucodeSPL and 9 fmcSPL.
	SPL map[int]uint8
	// HWID is the chip ID a VCEK was issued for, nil for a VLEK.
	HWID []byte
	// CSPID names the cloud provider a VLEK was issued to.
	CSPID string
}

// ParseKDSExtensions reads the KDS extensions among the extensions of a
// certificate whose kind is "VCEK" or "VLEK". It rejects an extension that
// appears twice or is not encoded as the specification states. It also
// rejects a missing productName or security patch level of the product's
// TCB layout, a VCEK without hwid or with CSP_ID, and a VLEK without CSP_ID
// or with hwid. Unknown extensions under OIDKDS are skipped, because later
// KDS versions may add some.
func ParseKDSExtensions(extensions []pkix.Extension, kind string) (*KDSExtensions, error) {
	e := &KDSExtensions{SPL: map[int]uint8{}}
	seen := map[string]bool{}
	for _, ext := range extensions {
		if len(ext.Id) <= len(OIDKDS) || !ext.Id[:len(OIDKDS)].Equal(OIDKDS) {
			continue
		}
		id := ext.Id.String()
		if seen[id] {
			return nil, fmt.Errorf("extension %s appears twice", id)
		}
		seen[id] = true
		if err := e.setExtension(ext.Id[len(OIDKDS):], ext.Value); err != nil {
			return nil, fmt.Errorf("extension %s: %v", id, err)
		}
	}

	if e.ProductName == "" {
		return nil, fmt.Errorf("productName extension (1.3.6.1.4.1.3704.1.2) is missing")
	}
	e.Product, _, _ = strings.Cut(e.ProductName, "-")
	if e.Product == "" {
		return nil, fmt.Errorf("productName extension (1.3.6.1.4.1.3704.1.2) %q names no product line before its stepping", e.ProductName)
	}
	for _, f := range TCBLayout(e.Product) {
		if _, ok := e.SPL[f.SPLArc]; !ok {
			return nil, fmt.Errorf("%s security patch level extension (1.3.6.1.4.1.3704.1.3.%d) is missing", f.Name, f.SPLArc)
		}
	}
	switch kind {
	case "VCEK":
		if e.HWID == nil {
			return nil, fmt.Errorf("VCEK has no hwid extension (1.3.6.1.4.1.3704.1.4)")
		}
		if e.CSPID != "" {
			return nil, fmt.Errorf("VCEK carries a CSP_ID extension, which only VLEKs have")
		}
	case "VLEK":
		if e.CSPID == "" {
			return nil, fmt.Errorf("VLEK has no CSP_ID extension (1.3.6.1.4.1.3704.1.5)")
		}
		if e.HWID != nil {
			return nil, fmt.Errorf("VLEK carries a hwid extension, which only VCEKs have")
		}
	default:
		return nil, fmt.Errorf("certificate kind %q is neither VCEK nor VLEK", kind)
	}
	return e, nil
}

// setExtension stores one KDS extension, given the arcs after OIDKDS.
func (e *KDSExtensions) setExtension(arcs asn1.ObjectIdentifier, value []byte) error {
	switch {
	case len(arcs) == 1 && arcs[0] == KDSStructVersion:
		_, err := parseUint8(value)
		return err
	case len(arcs) == 1 && arcs[0] == KDSProductName:
		s, err := parseIA5(value)
		e.ProductName = s
		return err
	case len(arcs) == 2 && arcs[0] == KDSSPL:
		v, err := parseUint8(value)
		e.SPL[arcs[1]] = v
		return err
	case len(arcs) == 1 && arcs[0] == KDSHWID:
		hwid, err := parseHWID(value)
		e.HWID = hwid
		return err
	case len(arcs) == 1 && arcs[0] == KDSCSPID:
		s, err := parseIA5(value)
		e.CSPID = s
		return err
	}
	return nil
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
	if len(value) == ChipIDSize || len(value) == TurinHWIDSize {
		return value, nil
	}
	var octets []byte
	rest, err := asn1.Unmarshal(value, &octets)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("hwid is %d bytes, expected 64 (8 on Turin) raw bytes or an OCTET STRING", len(value))
	}
	if len(octets) != ChipIDSize && len(octets) != TurinHWIDSize {
		return nil, fmt.Errorf("hwid is %d bytes, expected 64 (8 on Turin)", len(octets))
	}
	return octets, nil
}
