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
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/cloister-dev/cloister/attest"
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
	// QuoteVersion is 4 (default), 3 for SGX only, or 5, which has a body
	// descriptor. A TDX quote of version 5 carries a TDX 1.5 TD report body
	// and a TDX module of major version 1.
	QuoteVersion int
	// ModuleUpdated emulates a TD launched before a TD-preserving update
	// of its TDX module, for TDX quotes of version 5 only. TEE_TCB_SVN then
	// names the launch module, which the emulated TCB Info lists as
	// OutOfDate, and TEE_TCB_SVN2 the current one, so verification advises
	// a relaunch.
	ModuleUpdated bool
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
	case o.QuoteVersion == 4, o.QuoteVersion == 5:
	case o.QuoteVersion == 3 && o.TEE == "sgx":
	default:
		return fmt.Errorf("dcap emulator: quote version %d is not available for %s: use 4 or 5, or 3 for sgx", o.QuoteVersion, o.TEE)
	}
	if o.ModuleUpdated && (o.TEE != "tdx" || o.QuoteVersion != 5) {
		return fmt.Errorf("dcap emulator: a TDX module update is only available for TDX quotes of version 5, because only they carry TEE_TCB_SVN2; use tdx with quote version 5")
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

// EventLog returns the emulated TDX guest's CC event log, which replays to
// the RTMRs of every quote of the emulator, or nil for SGX. It never
// returns an error. The KBS client sends the log beside the quote, as it
// does for TDXAttester.
func (e *Emulator) EventLog(context.Context) ([]byte, error) {
	if e.opts.TEE != "tdx" {
		return nil, nil
	}
	log, _ := emulatedEventLog()
	return log, nil
}

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
	// The quote comes without its CC event log, as from the TDX attester
	// of real hardware, because Evidence.Aux also travels in RA-TLS
	// certificates as endorsements. EventLog returns the log, and
	// cloister emulate tdx writes it beside the quote.
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
	signed = append(signed, intelQEVendorID[:]...)
	signed = append(signed, make([]byte, 20)...)

	body := e.body(reportData)
	if v == 5 {
		bodyType := uint16(bodyTypeTDX15)
		if e.opts.TEE == "sgx" {
			bodyType = bodyTypeSGX
		}
		signed = binary.LittleEndian.AppendUint16(signed, bodyType)
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
	if e.opts.QuoteVersion == 5 && e.opts.TEE == "tdx" {
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
	// The RTMRs are those that the emulated event log replays to, so that
	// EventLog verifies against them.
	_, rtmrs := emulatedEventLog()
	for i := range rtmrs {
		copy(b[328+48*i:], rtmrs[i][:])
	}
	copy(b[520:584], reportData[:])
	if size == tdReport15Size {
		// TEE_TCB_SVN2 is the TEE_TCB_SVN of the module running now: the
		// launch module, unless a TD-preserving update replaced it.
		copy(b[584:600], b[0:16])
		if e.opts.ModuleUpdated {
			b[0] = emulatedModuleSVN - 1
		}
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
