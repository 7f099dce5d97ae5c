package dcap

import (
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// TCB component names in the claims: sgx_comp01..16 from the PCK
// certificate, tdx_comp01..16 from TEE_TCB_SVN.
var sgxComponentNames, tdxComponentNames = componentNames("sgx_comp"), componentNames("tdx_comp")

func componentNames(prefix string) [16]string {
	var names [16]string
	for i := range names {
		names[i] = fmt.Sprintf("%s%02d", prefix, i+1)
	}
	return names
}

// newClaims fills the claims that the quote proves once its signatures and
// PCK chain verified. path runs from the PCK leaf to the root.
func newClaims(q *Quote, chain *pckChain, verified *verifiedPath, at time.Time) *attest.Claims {
	c := &attest.Claims{
		TEE:         q.TEE(),
		Emulated:    verified.anchor.Kind == attest.AnchorEmulatedRoot,
		TrustAnchor: verified.anchor,
		VerifiedAt:  at.UTC(),
		SigningKey:  "PCK",
		Chain:       slices.Clone(verified.infos),
	}
	c.SetAttribute("quote_version", int(q.Header.Version))
	c.SetAttribute("qe_isvsvn", int(q.QE.ISVSVN))

	ext := chain.ext
	c.SetPlatform("fmspc", hex.EncodeToString(ext.FMSPC))
	c.SetPlatform("pce_id", hex.EncodeToString(ext.PCEID))
	if kind := pckCAKind(chain.leaf.Issuer.CommonName); kind != "" {
		c.SetPlatform("pck_ca", kind)
	}
	for i, svn := range ext.CompSVN {
		c.TCB.Components = append(c.TCB.Components, attest.TCBComponent{Name: sgxComponentNames[i], Value: uint64(svn)})
	}
	c.TCB.Components = append(c.TCB.Components, attest.TCBComponent{Name: "pce_svn", Value: uint64(ext.PCESVN)})

	if q.Enclave != nil {
		addEnclaveClaims(c, q.Enclave)
	} else {
		addTDClaims(c, q.TD)
	}
	return c
}

func addEnclaveClaims(c *attest.Claims, e *EnclaveReport) {
	c.Measurement = e.MREnclave[:]
	c.SetMeasurement("mrenclave", e.MREnclave[:])
	c.SetMeasurement("mrsigner", e.MRSigner[:])
	c.ReportData = e.ReportData[:]
	c.Debug = e.Debug()
	c.SetAttribute("isvprodid", int(e.ISVProdID))
	c.SetAttribute("isvsvn", int(e.ISVSVN))
	c.SetAttribute("attributes", hex.EncodeToString(e.Attributes[:]))
	c.SetAttribute("miscselect", fmt.Sprintf("%08x", e.MiscSelect))
	c.SetAttribute("cpusvn", hex.EncodeToString(e.CPUSVN[:]))
	c.SetAttribute("configsvn", int(e.ConfigSVN))
}

func addTDClaims(c *attest.Claims, t *TDReport) {
	c.Measurement = t.MRTD[:]
	c.SetMeasurement("mrtd", t.MRTD[:])
	for i := range t.RTMR {
		c.SetMeasurement(fmt.Sprintf("rtmr%d", i), t.RTMR[i][:])
	}
	c.SetMeasurement("mrseam", t.MRSEAM[:])
	c.SetMeasurement("mrsignerseam", t.MRSignerSEAM[:])
	c.SetMeasurement("mrconfigid", t.MRConfigID[:])
	c.SetMeasurement("mrowner", t.MROwner[:])
	c.SetMeasurement("mrownerconfig", t.MROwnerConfig[:])

	c.HostData = t.MRConfigID[:]
	c.ReportData = t.ReportData[:]
	c.Debug = t.Debug()
	c.SetAttribute("td_attributes", hex.EncodeToString(t.TDAttributes[:]))
	c.SetAttribute("seam_attributes", hex.EncodeToString(t.SEAMAttributes[:]))
	c.SetAttribute("xfam", hex.EncodeToString(t.XFAM[:]))
	c.SetAttribute("xfam_value", binary.LittleEndian.Uint64(t.XFAM[:]))
	c.SetAttribute("tee_tcb_svn", hex.EncodeToString(t.TEETCBSVN[:]))

	for i, svn := range t.TEETCBSVN {
		c.TCB.Components = append(c.TCB.Components, attest.TCBComponent{Name: tdxComponentNames[i], Value: uint64(svn)})
	}
	c.TCB.Values = map[string]string{"tee_tcb_svn": hex.EncodeToString(t.TEETCBSVN[:])}

	if t.Is15 {
		c.SetAttribute("tee_tcb_svn2", hex.EncodeToString(t.TEETCBSVN2[:]))
		c.TCB.Values["tee_tcb_svn2"] = hex.EncodeToString(t.TEETCBSVN2[:])
		c.SetMeasurement("mrservicetd", t.MRServiceTD[:])
		c.SetAttribute("tdx_version", "1.5")
	} else {
		c.SetAttribute("tdx_version", "1.0")
	}
}

// chainInfos summarises a verified path, leaf first, for Claims.Chain.
func chainInfos(path []*x509.Certificate) []attest.CertInfo {
	roles := []string{"PCK leaf", "PCK CA"}
	infos := make([]attest.CertInfo, 0, len(path))
	for i, cert := range path {
		role := "intermediate"
		switch {
		case i == len(path)-1:
			role = "root"
		case i < len(roles):
			role = roles[i]
		}
		infos = append(infos, attest.NewCertInfo(role, cert))
	}
	return infos
}

// applyEvaluation copies a TCB evaluation into the claims.
func applyEvaluation(c *attest.Claims, e *TCBEvaluation) {
	c.TCB.Status = e.Status
	c.TCB.AdvisoryIDs = e.AdvisoryIDs
	if c.TCB.AdvisoryIDs == nil {
		c.TCB.AdvisoryIDs = []string{}
	}
	c.TCB.Date = e.Date
	if e.PlatformStatus != "" {
		c.SetAttribute("tcb_platform_status", e.PlatformStatus)
	}
	if e.ModuleStatus != "" {
		c.SetAttribute("tcb_tdx_module_status", e.ModuleStatus)
	}
	if e.QEStatus != "" {
		c.SetAttribute("tcb_qe_status", e.QEStatus)
	}
	if e.RelaunchAdvised {
		c.TCB.RelaunchAdvised = true
		c.Warnings = append(c.Warnings, fmt.Sprintf("TD relaunch advised: the TD was launched on a TDX module that a TD-preserving update has since replaced, and the running module (TEE_TCB_SVN2 %s) is up to date, so relaunching the TD lifts its %s status to the running module's level without a firmware update",
			c.TCB.Values["tee_tcb_svn2"], e.Status))
	}
}

// evaluationNumbers are the tcbEvaluationDataNumber values of the TCB Info
// and the QE Identity used, nil for a document that was missing or failed
// its signature or chain check.
type evaluationNumbers struct {
	tcbInfo, identity *int
}

// apply sets the tcb_evaluation_data_number attribute to the lower of the
// numbers, as Intel's QvE reports it (tcb_eval_ref_num), so that a policy
// can require a minimum TCB recovery event. Intel PCS raises the number of
// TCB Info and QE Identity together, so different numbers mean documents
// of different TCB recovery events. QVL accepts them, so they are only a
// warning.
func (n evaluationNumbers) apply(c *attest.Claims) {
	switch {
	case n.tcbInfo != nil && n.identity != nil:
		c.SetAttribute("tcb_evaluation_data_number", min(*n.tcbInfo, *n.identity))
		if *n.tcbInfo != *n.identity {
			c.Warnings = append(c.Warnings, fmt.Sprintf("the TCB Info has tcbEvaluationDataNumber %d but the QE Identity has %d, so they come from different TCB recovery events, and the older one may rate the platform or the QE higher than Intel now does; fetch both from Intel PCS with the same update parameter (standard or early) or the same tcbEvaluationDataNumber",
				*n.tcbInfo, *n.identity))
		}
	case n.tcbInfo != nil:
		c.SetAttribute("tcb_evaluation_data_number", *n.tcbInfo)
	case n.identity != nil:
		c.SetAttribute("tcb_evaluation_data_number", *n.identity)
	}
}
