package nvgpu

import (
	"crypto/x509"
	"encoding/asn1"

	"github.com/cloister-dev/cloister/attest"
)

// oidTCGDICETcbInfo is tcg-dice-TcbInfo (2.23.133.5.4.1), the certificate
// extension that carries the firmware IDs of a DICE layer.
var oidTCGDICETcbInfo = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 1}

// oidSHA384 is id-sha384, the hash algorithm of a 48-byte FWID.
var oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}

// fwidListTag is the context-specific tag [6] of DiceTcbInfo's fwids.
const fwidListTag = 6

// fwid is FWID ::= SEQUENCE { hashAlg OBJECT IDENTIFIER, digest OCTET STRING }.
type fwid struct {
	HashAlg asn1.ObjectIdentifier
	Digest  []byte
}

// certFWID returns the SHA-384 FWID of the certificate's TCG DICE TcbInfo
// extension. The extension is a SEQUENCE. TCG's DiceTcbInfo puts the FWIDs
// in its [6] fwids list, while NVIDIA GPU certificates carry a version, a
// SubjectPublicKeyInfo and one FWID directly in the outer SEQUENCE. Both
// layouts are read, and exactly one SHA-384 FWID must be found.
func certFWID(cert *x509.Certificate) ([]byte, error) {
	var value []byte
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidTCGDICETcbInfo) {
			value = ext.Value
			break
		}
	}
	if value == nil {
		return nil, attest.Errorf(attest.ErrChain, "device certificate", "certificate %q has no TCG DICE TcbInfo extension (2.23.133.5.4.1), so its FWID is unknown", cert.Subject.String()).
			WithFix("pass the GPU's own device certificate chain, leaf first")
	}

	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(value, &outer); err != nil || len(rest) != 0 || outer.Tag != asn1.TagSequence || !outer.IsCompound {
		return nil, attest.Malformed("device certificate TcbInfo", "extension is not a DER SEQUENCE", err)
	}
	var digests [][]byte
	for body := outer.Bytes; len(body) > 0; {
		var elem asn1.RawValue
		rest, err := asn1.Unmarshal(body, &elem)
		if err != nil {
			return nil, attest.Malformed("device certificate TcbInfo", "invalid DER element", err)
		}
		body = rest
		switch {
		case elem.Class == asn1.ClassContextSpecific && elem.Tag == fwidListTag && elem.IsCompound:
			for list := elem.Bytes; len(list) > 0; {
				var f fwid
				if list, err = asn1.Unmarshal(list, &f); err != nil {
					return nil, attest.Malformed("device certificate TcbInfo.fwids", "invalid FWID list", err)
				}
				digests = appendSHA384(digests, f)
			}
		case elem.Class == asn1.ClassUniversal && elem.Tag == asn1.TagSequence:
			var f fwid
			if rest, err := asn1.Unmarshal(elem.FullBytes, &f); err == nil && len(rest) == 0 {
				digests = appendSHA384(digests, f)
			}
		}
	}
	switch len(digests) {
	case 1:
		return digests[0], nil
	case 0:
		return nil, attest.Malformed("device certificate TcbInfo", "no SHA-384 FWID in the extension", nil)
	default:
		return nil, attest.Malformed("device certificate TcbInfo", "more than one SHA-384 FWID in the extension", nil)
	}
}

func appendSHA384(digests [][]byte, f fwid) [][]byte {
	if f.HashAlg.Equal(oidSHA384) && len(f.Digest) == fwidSize {
		return append(digests, f.Digest)
	}
	return digests
}
