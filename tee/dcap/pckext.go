package dcap

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// OIDSGXExtensions is the Intel SGX extensions OID of a PCK certificate.
// Its value is a SEQUENCE of (OID, value) pairs: PPID, TCB, PCE-ID, FMSPC,
// SGX type and, for platform CA certificates, platform instance and
// configuration entries. The layout comes from Intel's "SGX PCK
// Certificate and Certificate Revocation List Profile Specification".
var OIDSGXExtensions = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}

var (
	oidPPID    = append(append(asn1.ObjectIdentifier{}, OIDSGXExtensions...), 1)
	oidTCB     = append(append(asn1.ObjectIdentifier{}, OIDSGXExtensions...), 2)
	oidPCEID   = append(append(asn1.ObjectIdentifier{}, OIDSGXExtensions...), 3)
	oidFMSPC   = append(append(asn1.ObjectIdentifier{}, OIDSGXExtensions...), 4)
	oidSGXType = append(append(asn1.ObjectIdentifier{}, OIDSGXExtensions...), 5)
)

// PCKExtensions are the SGX extension values of a PCK certificate.
type PCKExtensions struct {
	PPID []byte
	// CompSVN are the 16 SGX TCB component SVNs (SGX_TCB_COMP01..16).
	CompSVN [16]uint8
	PCESVN  uint16
	CPUSVN  []byte
	PCEID   []byte
	FMSPC   []byte
	// SGXType is 0 for Standard and 1 for Scalable platforms.
	SGXType int
}

type sgxExtension struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// PCKExtensionsFromCert finds and parses the SGX extensions of cert.
func PCKExtensionsFromCert(cert *x509.Certificate) (*PCKExtensions, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(OIDSGXExtensions) {
			return ParsePCKExtensions(ext.Value)
		}
	}
	return nil, attest.Malformed("PCK certificate", "the SGX extensions (OID "+OIDSGXExtensions.String()+") are missing", nil).
		WithFix("the leaf of the quote's certification data must be an Intel SGX PCK certificate")
}

// ParsePCKExtensions parses the DER value of the SGX extensions. PPID, TCB,
// PCE-ID and FMSPC are required; unknown entries are ignored, as Intel adds
// entries for new platform types.
func ParsePCKExtensions(der []byte) (*PCKExtensions, error) {
	var entries []sgxExtension
	if err := unmarshalAll(der, &entries); err != nil {
		return nil, attest.Malformed("PCK SGX extensions", "not a SEQUENCE of (OID, value)", err)
	}
	p := &PCKExtensions{}
	seen := map[string]bool{}
	for _, e := range entries {
		key := e.ID.String()
		if seen[key] {
			return nil, attest.Malformed("PCK SGX extensions", "entry "+key+" appears twice", nil)
		}
		seen[key] = true
		var err error
		switch {
		case e.ID.Equal(oidPPID):
			p.PPID, err = octets(e.Value, 16)
		case e.ID.Equal(oidTCB):
			err = p.parseTCB(e.Value.FullBytes)
		case e.ID.Equal(oidPCEID):
			p.PCEID, err = octets(e.Value, 2)
		case e.ID.Equal(oidFMSPC):
			p.FMSPC, err = octets(e.Value, 6)
		case e.ID.Equal(oidSGXType):
			var sgxType asn1.Enumerated
			err = unmarshalAll(e.Value.FullBytes, &sgxType)
			p.SGXType = int(sgxType)
		}
		if err != nil {
			return nil, attest.Malformed("PCK SGX extension "+key, "invalid value", err)
		}
	}
	for _, req := range []asn1.ObjectIdentifier{oidPPID, oidTCB, oidPCEID, oidFMSPC} {
		if !seen[req.String()] {
			return nil, attest.Malformed("PCK SGX extensions", "required entry "+req.String()+" is missing", nil)
		}
	}
	return p, nil
}

func (p *PCKExtensions) parseTCB(der []byte) error {
	var entries []sgxExtension
	if err := unmarshalAll(der, &entries); err != nil {
		return err
	}
	seen := map[int]bool{}
	for _, e := range entries {
		if len(e.ID) != len(oidTCB)+1 || !e.ID[:len(oidTCB)].Equal(oidTCB) {
			continue
		}
		n := e.ID[len(oidTCB)]
		if seen[n] {
			return fmt.Errorf("TCB entry %d appears twice", n)
		}
		seen[n] = true
		switch {
		case n >= 1 && n <= 16:
			var v int
			if err := unmarshalAll(e.Value.FullBytes, &v); err != nil {
				return err
			}
			if v < 0 || v > 255 {
				return fmt.Errorf("SGX TCB component %d is %d, outside 0..255", n, v)
			}
			p.CompSVN[n-1] = uint8(v)
		case n == 17:
			var v int
			if err := unmarshalAll(e.Value.FullBytes, &v); err != nil {
				return err
			}
			if v < 0 || v > 65535 {
				return fmt.Errorf("PCESVN is %d, outside 0..65535", v)
			}
			p.PCESVN = uint16(v)
		case n == 18:
			cpusvn, err := octets(e.Value, 16)
			if err != nil {
				return err
			}
			p.CPUSVN = cpusvn
		}
	}
	for n := 1; n <= 17; n++ {
		if !seen[n] {
			return fmt.Errorf("TCB entry %d is missing", n)
		}
	}
	return nil
}

// unmarshalAll decodes der into v and rejects trailing bytes.
func unmarshalAll(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d trailing bytes", len(rest))
	}
	return nil
}

// octets decodes an OCTET STRING of exactly size bytes.
func octets(v asn1.RawValue, size int) ([]byte, error) {
	var b []byte
	if err := unmarshalAll(v.FullBytes, &b); err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("%d bytes, expected %d", len(b), size)
	}
	return b, nil
}
