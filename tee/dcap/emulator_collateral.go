package dcap

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// Collateral returns matching TCB Info, QE Identity and CRLs, signed now
// and valid for 30 days, with the issuer certificates. The root is left
// out, because it must come from the trust anchors. If signing fails, the
// set is empty and Set.Ignored contains the reason, so verification
// reports the collateral as missing.
func (e *Emulator) Collateral() *collateral.Set {
	set := &collateral.Set{}
	files, err := e.CollateralFiles(time.Now())
	if err != nil {
		set.Ignored = append(set.Ignored, "emulated collateral: "+err.Error())
		return set
	}
	for name, data := range files {
		set.AddBytes(name, data)
	}
	return set
}

// CollateralFiles returns the collateral as the files Intel PCS serves,
// keyed by file name, issued at now.
func (e *Emulator) CollateralFiles(now time.Time) (map[string][]byte, error) {
	issued, next := now.Add(-time.Minute).UTC().Truncate(time.Second), now.AddDate(0, 0, 30).UTC().Truncate(time.Second)
	tcbInfo, err := e.signedDocument("tcbInfo", e.tcbInfo(issued, next))
	if err != nil {
		return nil, err
	}
	qeIdentity, err := e.signedDocument("enclaveIdentity", e.qeIdentity(issued, next))
	if err != nil {
		return nil, err
	}
	pckCRL, err := issueCRL(e.pckCA, e.pckCAKey, issued, next)
	if err != nil {
		return nil, err
	}
	rootCRL, err := issueCRL(e.root, e.rootKey, issued, next)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"tcb_info.json":                tcbInfo,
		"tcb_info_issuer_chain.pem":    pemCert(e.tcbSigner),
		"qe_identity.json":             qeIdentity,
		"qe_identity_issuer_chain.pem": pemCert(e.tcbSigner),
		"pck_crl.der":                  pckCRL,
		"pck_crl_issuer_chain.pem":     pemCert(e.pckCA),
		"root_ca_crl.der":              rootCRL,
	}, nil
}

func issueCRL(issuer *x509.Certificate, key *ecdsa.PrivateKey, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(thisUpdate.Unix()), ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
	}, issuer, key)
}

// signedDocument marshals body and wraps it as Intel PCS does, with the
// TCB signing key's signature over the exact bytes of body.
func (e *Emulator) signedDocument(key string, body any) ([]byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	sig, err := signRaw(e.tcbSignerKey, raw)
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf(`{"%s":%s,"signature":"%s"}`, key, raw, hex.EncodeToString(sig))), nil
}

func (e *Emulator) tcbInfo(issued, next time.Time) *TCBInfo {
	info := &TCBInfo{
		ID: strings.ToUpper(e.opts.TEE), Version: 3, IssueDate: issued, NextUpdate: next,
		FMSPC: strings.ToUpper(hex.EncodeToString(emulatedFMSPC)), PCEID: hex.EncodeToString(emulatedPCEID),
		TCBEvaluationDataNumber: 17,
	}
	tcbDate := time.Date(2024, 11, 13, 0, 0, 0, 0, time.UTC)
	level := func(sgx, tdx [16]uint8, pcesvn int, status string, date time.Time, advisories ...string) TCBLevel {
		var l TCBLevel
		for _, svn := range sgx {
			l.TCB.SGXComponents = append(l.TCB.SGXComponents, TCBComponent{SVN: int(svn)})
		}
		if e.opts.TEE == "tdx" {
			for _, svn := range tdx {
				l.TCB.TDXComponents = append(l.TCB.TDXComponents, TCBComponent{SVN: int(svn)})
			}
		}
		l.TCB.PCESVN = pcesvn
		l.TCBDate, l.TCBStatus, l.AdvisoryIDs = date, status, advisories
		return l
	}
	older := emulatedCompSVN
	older[0]--
	info.TCBLevels = []TCBLevel{
		level(emulatedCompSVN, emulatedTDXSVN, emulatedPCESVN, attest.TCBUpToDate, tcbDate),
		level(older, emulatedTDXSVN, emulatedPCESVN-1, attest.TCBOutOfDate, tcbDate.AddDate(-1, 0, 0), "INTEL-SA-00000"),
	}
	if e.opts.TEE == "tdx" {
		zeroSigner := strings.Repeat("0", 96)
		info.TDXModule = &TDXModule{MRSigner: zeroSigner, Attributes: "0000000000000000", AttributesMask: "FFFFFFFFFFFFFFFF"}
		module := TDXModuleIdentity{ID: "TDX_01", MRSigner: zeroSigner, Attributes: "0000000000000000", AttributesMask: "FFFFFFFFFFFFFFFF"}
		up := ISVSVNTCBLevel{TCBDate: tcbDate, TCBStatus: attest.TCBUpToDate}
		up.TCB.ISVSVN = emulatedModuleSVN
		old := ISVSVNTCBLevel{TCBDate: tcbDate.AddDate(-1, 0, 0), TCBStatus: attest.TCBOutOfDate, AdvisoryIDs: []string{"INTEL-SA-00001"}}
		old.TCB.ISVSVN = emulatedModuleSVN - 2
		module.TCBLevels = []ISVSVNTCBLevel{up, old}
		info.TDXModuleIdentities = []TDXModuleIdentity{module}
	}
	return info
}

func (e *Emulator) qeIdentity(issued, next time.Time) *EnclaveIdentity {
	signer := sha256.Sum256([]byte(emulatedQEName))
	id := &EnclaveIdentity{
		ID: "QE", Version: 2, IssueDate: issued, NextUpdate: next, TCBEvaluationDataNumber: 17,
		MiscSelect: "00000000", MiscSelectMask: "FFFFFFFF",
		Attributes: "11000000000000000000000000000000", AttributesMask: "FBFFFFFFFFFFFFFF0000000000000000",
		MRSigner: strings.ToUpper(hex.EncodeToString(signer[:])), ISVProdID: int(e.qeProdID()),
	}
	if e.opts.TEE == "tdx" {
		id.ID = "TD_QE"
	}
	up := ISVSVNTCBLevel{TCBDate: time.Date(2024, 11, 13, 0, 0, 0, 0, time.UTC), TCBStatus: attest.TCBUpToDate}
	up.TCB.ISVSVN = emulatedQEISVSVN
	id.TCBLevels = []ISVSVNTCBLevel{up}
	return id
}
