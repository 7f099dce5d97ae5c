package dcap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// EmulatorOptions configure an emulated SGX enclave or TDX trust domain.
// The zero value is not valid: TEE must be "sgx" or "tdx".
type EmulatorOptions struct {
	// TEE is "sgx" or "tdx".
	TEE string
	// Debug sets ATTRIBUTES.DEBUG (SGX) or TD_ATTRIBUTES.DEBUG (TDX).
	Debug bool
	// Measurement is MRENCLAVE (32 bytes) or MRTD (48 bytes). The default
	// is a hash of "cloister emulated SGX enclave" or "... TDX guest".
	Measurement []byte
	// QuoteVersion is 4 (default) for both TEEs, 3 for SGX only, or 5 for
	// TDX only, which carries a TDX 1.5 TD report body and a TDX module
	// of major version 1.
	QuoteVersion int
}

// Emulated platform values. They are plausible for a current Xeon and
// consistent between the PCK certificate, the quote and the collateral.
var (
	emulatedFMSPC   = []byte{0x00, 0xc1, 0x05, 0x7e, 0x00, 0x00}
	emulatedPCEID   = []byte{0x00, 0x00}
	emulatedCompSVN = [16]uint8{7, 7, 2, 2, 4, 1, 0, 5}
	emulatedTDXSVN  = [16]uint8{5, 0, 3}
	emulatedQEName  = "cloister emulated quoting enclave"
)

const (
	emulatedPCESVN   = 13
	emulatedQEISVSVN = 8
	// emulatedModuleSVN is TEE_TCB_SVN[0] of an emulated TDX 1.5 module.
	emulatedModuleSVN = 6
)

// Emulator produces DCAP quotes in Intel's real formats, signed by a
// development PCK certificate that chains to a development root generated
// on this machine. Every certificate carries the subject organization
// attest.EmulatedOrganization, so verifiers label its quotes as emulated
// and trust them only when the root is passed as a trust anchor.
//
// It mirrors Intel's hierarchy: root CA, PCK Platform CA, PCK leaf (with
// the SGX extensions: FMSPC, PCE ID, TCB) and TCB signing certificate, all
// ECDSA P-256. The PCK key signs the QE report, and a separate attestation
// key signs the quotes, as on hardware.
type Emulator struct {
	opts EmulatorOptions

	root, pckCA, pck, tcbSigner             *x509.Certificate
	rootKey, pckCAKey, pckKey, tcbSignerKey *ecdsa.PrivateKey
	attestationKey                          *ecdsa.PrivateKey
}

func (o *EmulatorOptions) normalize() error {
	switch o.TEE {
	case "sgx", "tdx":
	default:
		return fmt.Errorf("dcap emulator: unknown TEE %q: use sgx or tdx", o.TEE)
	}
	switch {
	case o.QuoteVersion == 0:
		o.QuoteVersion = 4
	case o.QuoteVersion == 4:
	case o.QuoteVersion == 3 && o.TEE == "sgx", o.QuoteVersion == 5 && o.TEE == "tdx":
	default:
		return fmt.Errorf("dcap emulator: quote version %d is not available for %s: use 4, or 3 for sgx, or 5 for tdx", o.QuoteVersion, o.TEE)
	}
	size := 32
	if o.TEE == "tdx" {
		size = 48
	}
	if o.Measurement == nil {
		if o.TEE == "sgx" {
			sum := sha256.Sum256([]byte("cloister emulated SGX enclave"))
			o.Measurement = sum[:]
		} else {
			sum := sha512.Sum384([]byte("cloister emulated TDX guest"))
			o.Measurement = sum[:]
		}
	}
	if len(o.Measurement) != size {
		return fmt.Errorf("dcap emulator: measurement is %d bytes, expected %d for %s", len(o.Measurement), size, o.TEE)
	}
	return nil
}

// NewEmulator generates the development root, PCK CA, PCK certificate,
// TCB signing certificate and attestation key in memory.
func NewEmulator(opts EmulatorOptions) (*Emulator, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	e := &Emulator{opts: opts}
	if err := e.generate(time.Now()); err != nil {
		return nil, fmt.Errorf("dcap emulator: generating the development chain: %w", err)
	}
	return e, nil
}

func (e *Emulator) generate(now time.Time) error {
	keys := []**ecdsa.PrivateKey{&e.rootKey, &e.pckCAKey, &e.pckKey, &e.tcbSignerKey, &e.attestationKey}
	for _, k := range keys {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		*k = key
	}
	notBefore, notAfter := now.Add(-time.Hour), now.AddDate(10, 0, 0)
	var err error
	if e.root, err = issue(caTemplate("Cloister emulated Intel SGX Root CA", 1, notBefore, notAfter), nil, e.rootKey, nil); err != nil {
		return err
	}
	if e.pckCA, err = issue(caTemplate("Cloister emulated Intel SGX PCK Platform CA", 2, notBefore, notAfter), e.root, e.pckCAKey, e.rootKey); err != nil {
		return err
	}
	signer := leafTemplate("Cloister emulated Intel SGX TCB Signing", 3, notBefore, notAfter)
	if e.tcbSigner, err = issue(signer, e.root, e.tcbSignerKey, e.rootKey); err != nil {
		return err
	}
	pck := leafTemplate("Cloister emulated Intel SGX PCK Certificate", 4, notBefore, notAfter)
	ext, err := marshalPCKExtensions()
	if err != nil {
		return err
	}
	pck.ExtraExtensions = []pkix.Extension{{Id: OIDSGXExtensions, Value: ext}}
	e.pck, err = issue(pck, e.pckCA, e.pckKey, e.pckCAKey)
	return err
}

func emulatedName(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{attest.EmulatedOrganization}}
}

func caTemplate(cn string, serial int64, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: emulatedName(cn),
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
	}
}

func leafTemplate(cn string, serial int64, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: emulatedName(cn),
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
	}
}

// issue signs template with parentKey under parent, or self-signs it when
// parent is nil.
func issue(template, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) (*x509.Certificate, error) {
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// marshalPCKExtensions encodes the SGX extensions of the emulated PCK
// certificate in Intel's layout.
func marshalPCKExtensions() ([]byte, error) {
	entry := func(oid asn1.ObjectIdentifier, value any) (asn1.RawValue, error) {
		v, err := asn1.Marshal(value)
		if err != nil {
			return asn1.RawValue{}, err
		}
		return marshalRaw(struct {
			ID    asn1.ObjectIdentifier
			Value asn1.RawValue
		}{oid, asn1.RawValue{FullBytes: v}})
	}
	sub := func(base asn1.ObjectIdentifier, n int) asn1.ObjectIdentifier {
		return append(append(asn1.ObjectIdentifier{}, base...), n)
	}
	var tcb []asn1.RawValue
	for i, svn := range emulatedCompSVN {
		v, err := entry(sub(oidTCB, i+1), int(svn))
		if err != nil {
			return nil, err
		}
		tcb = append(tcb, v)
	}
	cpusvn := emulatedCompSVN[:]
	for _, x := range []struct {
		n int
		v any
	}{{17, emulatedPCESVN}, {18, cpusvn}} {
		v, err := entry(sub(oidTCB, x.n), x.v)
		if err != nil {
			return nil, err
		}
		tcb = append(tcb, v)
	}
	ppid := sha256.Sum256([]byte("cloister emulated PPID"))
	var entries []asn1.RawValue
	for _, x := range []struct {
		oid asn1.ObjectIdentifier
		v   any
	}{{oidPPID, ppid[:16]}, {oidTCB, tcb}, {oidPCEID, emulatedPCEID}, {oidFMSPC, emulatedFMSPC}, {oidSGXType, asn1.Enumerated(0)}} {
		v, err := entry(x.oid, x.v)
		if err != nil {
			return nil, err
		}
		entries = append(entries, v)
	}
	return asn1.Marshal(entries)
}

func marshalRaw(v any) (asn1.RawValue, error) {
	b, err := asn1.Marshal(v)
	return asn1.RawValue{FullBytes: b}, err
}

// Name returns "emulated-sgx" or "emulated-tdx".
func (e *Emulator) Name() string { return "emulated-" + e.opts.TEE }

// Root returns the development root, which a verifier must be given as a
// trust anchor.
func (e *Emulator) Root() *x509.Certificate { return e.root }

// Attest returns a quote that carries reportData, zero-padded to 64 bytes,
// in REPORTDATA.
func (e *Emulator) Attest(_ context.Context, reportData []byte) (*attest.Evidence, error) {
	if len(reportData) > 64 {
		return nil, fmt.Errorf("dcap emulator: report data is %d bytes, at most 64 fit in REPORTDATA", len(reportData))
	}
	var rd [64]byte
	copy(rd[:], reportData)
	quote, err := e.quote(rd)
	if err != nil {
		return nil, err
	}
	return &attest.Evidence{Format: "dcap", Data: quote}, nil
}

func (e *Emulator) quote(reportData [64]byte) ([]byte, error) {
	v := e.opts.QuoteVersion
	tee := uint32(TEETypeSGX)
	if e.opts.TEE == "tdx" {
		tee = TEETypeTDX
	}
	var signed []byte
	signed = binary.LittleEndian.AppendUint16(signed, uint16(v))
	signed = binary.LittleEndian.AppendUint16(signed, AttestationKeyECDSAP256)
	signed = binary.LittleEndian.AppendUint32(signed, tee)
	if v == 3 {
		signed = binary.LittleEndian.AppendUint16(signed, emulatedQEISVSVN)
		signed = binary.LittleEndian.AppendUint16(signed, emulatedPCESVN)
	} else {
		signed = append(signed, 0, 0, 0, 0)
	}
	intelQEVendorID, _ := hex.DecodeString("939a7233f79c4ca9940a0db3957f0607")
	signed = append(signed, intelQEVendorID...)
	signed = append(signed, make([]byte, 20)...)

	body := e.body(reportData)
	if v == 5 {
		signed = binary.LittleEndian.AppendUint16(signed, bodyTypeTDX15)
		signed = binary.LittleEndian.AppendUint32(signed, uint32(len(body)))
	}
	signed = append(signed, body...)

	sig, err := signRaw(e.attestationKey, signed)
	if err != nil {
		return nil, err
	}
	ak := rawPublicKey(&e.attestationKey.PublicKey)
	authData := []byte("cloister emulated QE authentication data")
	qeReport := e.qeReport(ak, authData)
	qeSig, err := signRaw(e.pckKey, qeReport)
	if err != nil {
		return nil, err
	}
	chain := append(pemCert(e.pck), pemCert(e.pckCA)...)
	chain = append(append(chain, pemCert(e.root)...), 0)

	var qeCert []byte
	qeCert = append(qeCert, qeReport...)
	qeCert = append(qeCert, qeSig...)
	qeCert = binary.LittleEndian.AppendUint16(qeCert, uint16(len(authData)))
	qeCert = append(qeCert, authData...)
	qeCert = binary.LittleEndian.AppendUint16(qeCert, certTypePCKChain)
	qeCert = binary.LittleEndian.AppendUint32(qeCert, uint32(len(chain)))
	qeCert = append(qeCert, chain...)

	sigData := append(append([]byte{}, sig...), ak...)
	if v == 3 {
		sigData = append(sigData, qeCert...)
	} else {
		sigData = binary.LittleEndian.AppendUint16(sigData, certTypeQEReport)
		sigData = binary.LittleEndian.AppendUint32(sigData, uint32(len(qeCert)))
		sigData = append(sigData, qeCert...)
	}
	out := binary.LittleEndian.AppendUint32(signed, uint32(len(sigData)))
	return append(out, sigData...), nil
}

// body returns the SGX enclave report or TD report body.
func (e *Emulator) body(reportData [64]byte) []byte {
	if e.opts.TEE == "sgx" {
		b := make([]byte, enclaveReportSize)
		copy(b[0:16], emulatedCompSVN[:])
		b[48] = 0x04 | 0x01 // ATTRIBUTES: MODE64BIT, INIT
		if e.opts.Debug {
			b[48] |= 0x02
		}
		b[56] = 0x03 // XFRM: x87, SSE
		copy(b[64:96], e.opts.Measurement)
		signer := sha256.Sum256([]byte("cloister emulated enclave signer"))
		copy(b[128:160], signer[:])
		binary.LittleEndian.PutUint16(b[256:], 1) // ISVPRODID
		binary.LittleEndian.PutUint16(b[258:], 1) // ISVSVN
		copy(b[320:384], reportData[:])
		return b
	}

	size := tdReport10Size
	if e.opts.QuoteVersion == 5 {
		size = tdReport15Size
	}
	b := make([]byte, size)
	copy(b[0:16], emulatedTDXSVN[:])
	if size == tdReport15Size {
		b[0], b[1] = emulatedModuleSVN, 1
	}

	mrseam := sha512.Sum384([]byte("cloister emulated TDX module"))
	copy(b[16:64], mrseam[:])
	if e.opts.Debug {
		b[120] = 0x01
	}

	binary.LittleEndian.PutUint64(b[128:136], 0x61ae7) // XFAM of a typical guest
	copy(b[136:184], e.opts.Measurement)
	for i := 0; i < 3; i++ {
		rtmr := sha512.Sum384([]byte(fmt.Sprintf("cloister emulated RTMR%d", i)))
		copy(b[328+48*i:], rtmr[:])
	}
	copy(b[520:584], reportData[:])
	if size == tdReport15Size {
		copy(b[584:600], b[0:16])
	}
	return b
}

// qeReport returns the emulated quoting enclave's report, whose REPORTDATA
// binds the attestation key and authentication data as Intel's QE does.
func (e *Emulator) qeReport(ak, authData []byte) []byte {
	b := make([]byte, enclaveReportSize)
	copy(b[0:16], emulatedCompSVN[:])
	b[48] = 0x11 // ATTRIBUTES: INIT, PROVISIONKEY
	b[56] = 0xe7
	signer := sha256.Sum256([]byte(emulatedQEName))
	copy(b[128:160], signer[:])
	binary.LittleEndian.PutUint16(b[256:], e.qeProdID())
	binary.LittleEndian.PutUint16(b[258:], emulatedQEISVSVN)
	h := sha256.New()
	h.Write(ak)
	h.Write(authData)
	copy(b[320:352], h.Sum(nil))
	return b
}

func (e *Emulator) qeProdID() uint16 {
	if e.opts.TEE == "tdx" {
		return 2
	}
	return 1
}

func signRaw(key *ecdsa.PrivateKey, message []byte) ([]byte, error) {
	digest := sha256.Sum256(message)
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

func rawPublicKey(pub *ecdsa.PublicKey) []byte {
	b, _ := pub.Bytes() // 0x04 || x || y for a P-256 key
	return b[1:]
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// Collateral returns matching TCB Info, QE Identity and CRLs, signed now
// and valid for 30 days, with the issuer certificates. The root is left
// out: it must come from the trust anchors.
func (e *Emulator) Collateral() (*collateral.Set, error) {
	files, err := e.CollateralFiles(time.Now())
	if err != nil {
		return nil, err
	}
	set := &collateral.Set{}
	for name, data := range files {
		set.AddBytes(name, data)
	}
	return set, nil
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

// File names that Save writes.
const (
	fileRoot        = "root.pem"
	filePCKCA       = "pck_ca.pem"
	filePCK         = "pck.pem"
	fileTCBSigner   = "tcb_signing.pem"
	fileRootKey     = "root_key.pem"
	filePCKCAKey    = "pck_ca_key.pem"
	filePCKKey      = "pck_key.pem"
	fileTCBKey      = "tcb_signing_key.pem"
	fileAttestKey   = "attestation_key.pem"
	fileEmulatorCfg = "emulator.json"
)

type emulatorState struct {
	TEE          string     `json:"tee"`
	Debug        bool       `json:"debug"`
	Measurement  attest.Hex `json:"measurement"`
	QuoteVersion int        `json:"quote_version"`
}

// Save writes the certificates, the keys (mode 0600) and the options to
// dir, creating it with mode 0700.
func (e *Emulator) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dcap emulator: %w", err)
	}
	state, err := json.MarshalIndent(emulatorState{e.opts.TEE, e.opts.Debug, e.opts.Measurement, e.opts.QuoteVersion}, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		fileRoot: pemCert(e.root), filePCKCA: pemCert(e.pckCA), filePCK: pemCert(e.pck), fileTCBSigner: pemCert(e.tcbSigner),
		fileEmulatorCfg: append(state, '\n'),
	}
	for name, data := range files {
		if err := writeFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("dcap emulator: %w", err)
		}
	}
	keys := map[string]*ecdsa.PrivateKey{
		fileRootKey: e.rootKey, filePCKCAKey: e.pckCAKey, filePCKKey: e.pckKey, fileTCBKey: e.tcbSignerKey, fileAttestKey: e.attestationKey,
	}
	for name, key := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("dcap emulator: encoding %s: %w", name, err)
		}
		if err := writeFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return fmt.Errorf("dcap emulator: %w", err)
		}
	}
	return nil
}

// writeFile writes data with exactly mode, also over an existing file with
// a wider mode.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// LoadEmulator reloads an emulator saved by Save and checks that each key
// matches its certificate.
func LoadEmulator(dir string) (*Emulator, error) {
	raw, err := os.ReadFile(filepath.Join(dir, fileEmulatorCfg))
	if err != nil {
		return nil, fmt.Errorf("dcap emulator: %w", err)
	}
	var state emulatorState
	if err := json.Unmarshal(raw, &state); err != nil {
		return nil, fmt.Errorf("dcap emulator: %s: %w", fileEmulatorCfg, err)
	}
	opts := EmulatorOptions{TEE: state.TEE, Debug: state.Debug, Measurement: state.Measurement, QuoteVersion: state.QuoteVersion}
	if err := opts.normalize(); err != nil {
		return nil, err
	}

	e := &Emulator{opts: opts}
	certs := []struct {
		name string
		cert **x509.Certificate
		file string
		key  **ecdsa.PrivateKey
	}{
		{"root", &e.root, fileRootKey, &e.rootKey},
		{"PCK CA", &e.pckCA, filePCKCAKey, &e.pckCAKey},
		{"PCK", &e.pck, filePCKKey, &e.pckKey},
		{"TCB signing", &e.tcbSigner, fileTCBKey, &e.tcbSignerKey},
	}
	certFiles := []string{fileRoot, filePCKCA, filePCK, fileTCBSigner}
	for i, c := range certs {
		if *c.cert, err = readCert(filepath.Join(dir, certFiles[i])); err != nil {
			return nil, err
		}
		if *c.key, err = readKey(filepath.Join(dir, c.file)); err != nil {
			return nil, err
		}
		if !(*c.key).PublicKey.Equal((*c.cert).PublicKey) {
			return nil, fmt.Errorf("dcap emulator: the key in %s does not match the %s certificate", c.file, c.name)
		}
	}

	if e.attestationKey, err = readKey(filepath.Join(dir, fileAttestKey)); err != nil {
		return nil, err
	}
	if !attest.IsEmulated(e.root) {
		return nil, fmt.Errorf("dcap emulator: %s is not a development root (its organization is not %q)", filepath.Join(dir, fileRoot), attest.EmulatedOrganization)
	}
	return e, nil
}

func readPEMBlock(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dcap emulator: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != typ {
		return nil, fmt.Errorf("dcap emulator: %s contains no %s PEM block", path, typ)
	}
	return block.Bytes, nil
}

func readCert(path string) (*x509.Certificate, error) {
	der, err := readPEMBlock(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("dcap emulator: %s: %w", path, err)
	}
	return cert, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	der, err := readPEMBlock(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("dcap emulator: %s: %w", path, err)
	}
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("dcap emulator: %s contains a %T, expected an ECDSA key", path, key)
	}
	return k, nil
}
