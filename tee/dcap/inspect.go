package dcap

import (
	"encoding/hex"
	"fmt"
)

// QuoteView is the decoded form of a quote that Inspect returns, with
// binary fields in lowercase hexadecimal.
type QuoteView struct {
	Version            uint16            `json:"version"`
	AttestationKeyType uint16            `json:"attestation_key_type"`
	TEE                string            `json:"tee"`
	BodyType           uint16            `json:"body_type"`
	QEVendorID         string            `json:"qe_vendor_id"`
	Body               map[string]string `json:"body"`
	QEReport           map[string]string `json:"qe_report"`
	AttestationKey     string            `json:"attestation_key"`
	QEAuthData         string            `json:"qe_auth_data"`
	PCKChain           []string          `json:"pck_chain,omitempty"`
	FMSPC              string            `json:"fmspc,omitempty"`
	PCEID              string            `json:"pce_id,omitempty"`
	PCESVN             uint16            `json:"pce_svn,omitempty"`
	SGXTCBComponents   string            `json:"sgx_tcb_components,omitempty"`
	Length             int               `json:"length"`
	TrailingBytes      int               `json:"trailing_bytes,omitempty"`
}

// Inspect decodes a quote without verifying it.
func (v *Verifier) Inspect(data []byte) (any, error) {
	q, err := ParseQuote(data)
	if err != nil {
		return nil, err
	}
	view := &QuoteView{
		Version: q.Header.Version, AttestationKeyType: q.Header.AttestationKeyType,
		TEE: string(q.TEE()), BodyType: q.BodyType,
		QEVendorID:     hex.EncodeToString(q.Header.QEVendorID[:]),
		QEReport:       enclaveView(q.QE),
		AttestationKey: hex.EncodeToString(q.AttestationKey),
		QEAuthData:     hex.EncodeToString(q.QEAuthData),
		Length:         q.Length, TrailingBytes: q.Trailing,
	}
	if q.Enclave != nil {
		view.Body = enclaveView(q.Enclave)
	} else {
		view.Body = tdView(q.TD)
	}
	if certs, err := parsePEMChain(q.PCKChainPEM); err == nil {
		for _, c := range certs {
			view.PCKChain = append(view.PCKChain, c.Subject.String())
		}
		if ext, err := PCKExtensionsFromCert(certs[0]); err == nil {
			view.FMSPC = hex.EncodeToString(ext.FMSPC)
			view.PCEID = hex.EncodeToString(ext.PCEID)
			view.PCESVN = ext.PCESVN
			view.SGXTCBComponents = hex.EncodeToString(ext.CompSVN[:])
		}
	}
	return view, nil
}

func enclaveView(e *EnclaveReport) map[string]string {
	return map[string]string{
		"cpusvn":      hex.EncodeToString(e.CPUSVN[:]),
		"miscselect":  fmt.Sprintf("%08x", e.MiscSelect),
		"attributes":  hex.EncodeToString(e.Attributes[:]),
		"mrenclave":   hex.EncodeToString(e.MREnclave[:]),
		"mrsigner":    hex.EncodeToString(e.MRSigner[:]),
		"isvprodid":   fmt.Sprint(e.ISVProdID),
		"isvsvn":      fmt.Sprint(e.ISVSVN),
		"configsvn":   fmt.Sprint(e.ConfigSVN),
		"report_data": hex.EncodeToString(e.ReportData[:]),
	}
}

func tdView(t *TDReport) map[string]string {
	m := map[string]string{
		"tee_tcb_svn":     hex.EncodeToString(t.TEETCBSVN[:]),
		"mrseam":          hex.EncodeToString(t.MRSEAM[:]),
		"mrsignerseam":    hex.EncodeToString(t.MRSignerSEAM[:]),
		"seam_attributes": hex.EncodeToString(t.SEAMAttributes[:]),
		"td_attributes":   hex.EncodeToString(t.TDAttributes[:]),
		"xfam":            hex.EncodeToString(t.XFAM[:]),
		"mrtd":            hex.EncodeToString(t.MRTD[:]),
		"mrconfigid":      hex.EncodeToString(t.MRConfigID[:]),
		"mrowner":         hex.EncodeToString(t.MROwner[:]),
		"mrownerconfig":   hex.EncodeToString(t.MROwnerConfig[:]),
		"report_data":     hex.EncodeToString(t.ReportData[:]),
	}
	for i := range t.RTMR {
		m[fmt.Sprintf("rtmr%d", i)] = hex.EncodeToString(t.RTMR[i][:])
	}
	if t.Is15 {
		m["tee_tcb_svn2"] = hex.EncodeToString(t.TEETCBSVN2[:])
		m["mrservicetd"] = hex.EncodeToString(t.MRServiceTD[:])
	}
	return m
}
