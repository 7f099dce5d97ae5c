package snp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/emudir"
	"github.com/cloister-dev/cloister/internal/snpabi"
)

// EmulatorOptions configure an emulated SEV-SNP guest. The zero value is a
// Milan guest without debug, signed by a VCEK.
type EmulatorOptions struct {
	// Product is Milan (default), Genoa or Turin.
	Product string
	// Debug sets the guest policy's DEBUG bit (19).
	Debug bool
	// Measurement is the 48-byte launch MEASUREMENT. The default is the
	// SHA-384 of "cloister emulated SEV-SNP guest".
	Measurement []byte
	// HostData is HOST_DATA, up to 32 bytes, zero-padded.
	HostData []byte
	// Policy is the guest policy. Zero means 0x30000 (SMT allowed, bit 17
	// set as the ABI requires); Debug adds bit 19 either way.
	Policy uint64
	// SigningKey is "VCEK" (default) or "VLEK".
	SigningKey string
}

// defaultMeasurementName is hashed into the default MEASUREMENT.
const defaultMeasurementName = "cloister emulated SEV-SNP guest"

// Emulator produces SEV-SNP attestation reports in the real version 3
// format, signed by a development VCEK or VLEK that chains to a development
// ARK generated on this machine. Its certificates carry the subject
// organization attest.EmulatedOrganization, so verifiers label its reports
// as emulated and trust them only when the ARK is passed as a trust anchor.
//
// The chain mirrors AMD's: an RSA-4096 ARK and ASK (or ASVK) signing with
// RSASSA-PSS SHA-384, and an ECDSA P-384 VCEK (or VLEK) whose KDS
// extensions certify the reports' REPORTED_TCB and CHIP_ID.
type Emulator struct {
	opts    EmulatorOptions
	chipID  [snpabi.ChipIDSize]byte
	tcb     uint64
	ark     *x509.Certificate
	arkKey  *rsa.PrivateKey
	ask     *x509.Certificate
	askKey  *rsa.PrivateKey
	leaf    *x509.Certificate
	leafKey *ecdsa.PrivateKey
}

// emulatorState is the JSON form of the options and platform identity that
// Save writes beside the keys.
type emulatorState struct {
	Product     string     `json:"product"`
	Debug       bool       `json:"debug"`
	Measurement attest.Hex `json:"measurement"`
	HostData    attest.Hex `json:"host_data,omitempty"`
	Policy      uint64     `json:"policy"`
	SigningKey  string     `json:"signing_key"`
	ChipID      attest.Hex `json:"chip_id"`
	ReportedTCB uint64     `json:"reported_tcb"`
}

// defaultTCB returns the emulated platform's TCB: security patch levels of
// recent AMD firmware for the product. They carry no meaning beyond being
// plausible and consistent between the report and the VCEK.
func defaultTCB(product string) uint64 {
	switch product {
	case ProductGenoa:
		return composeTCB(product, map[string]uint8{"bootloader": 10, "tee": 0, "snp": 23, "microcode": 84})
	case ProductTurin:
		return composeTCB(product, map[string]uint8{"fmc": 1, "bootloader": 1, "tee": 1, "snp": 4, "microcode": 75})
	}
	return composeTCB(product, map[string]uint8{"bootloader": 4, "tee": 0, "snp": 22, "microcode": 213})
}

// rsaKeyBits is the size of the development ARK and ASK keys, that of
// AMD's. Tests lower it, because generating RSA-4096 keys takes seconds.
var rsaKeyBits = 4096

// normalize fills in defaults and rejects invalid options.
func (o *EmulatorOptions) normalize() error {
	switch o.Product {
	case "":
		o.Product = ProductMilan
	case ProductMilan, ProductGenoa, ProductTurin:
	default:
		return fmt.Errorf("snp emulator: unknown product %q: use Milan, Genoa or Turin", o.Product)
	}
	switch o.SigningKey {
	case "":
		o.SigningKey = "VCEK"
	case "VCEK", "VLEK":
	default:
		return fmt.Errorf("snp emulator: unknown signing key %q: use VCEK or VLEK", o.SigningKey)
	}
	if o.Measurement == nil {
		sum := sha512.Sum384([]byte(defaultMeasurementName))
		o.Measurement = sum[:]
	}
	if len(o.Measurement) != 48 {
		return fmt.Errorf("snp emulator: measurement is %d bytes, expected 48", len(o.Measurement))
	}
	if len(o.HostData) > 32 {
		return fmt.Errorf("snp emulator: host data is %d bytes, at most 32 fit in HOST_DATA", len(o.HostData))
	}
	if o.Policy == 0 {
		o.Policy = 0x30000
	}
	if o.Policy&(1<<policyReservedOneBit) == 0 {
		return fmt.Errorf("snp emulator: guest policy 0x%x has bit 17 clear, which the SEV-SNP ABI requires to be set", o.Policy)
	}
	if o.Policy>>policyDefinedBits != 0 {
		return fmt.Errorf("snp emulator: guest policy 0x%x sets reserved bits 63:26, which the SEV-SNP ABI requires to be zero", o.Policy)
	}
	if o.Debug {
		o.Policy |= 1 << policyDebugBit
	}
	return nil
}

// NewEmulator generates a development ARK, ASK (ASVK for a VLEK) and VCEK
// (or VLEK) in memory, with a random chip ID.
func NewEmulator(opts EmulatorOptions) (*Emulator, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	e := &Emulator{opts: opts, tcb: defaultTCB(opts.Product)}
	// Turin chip IDs are 8 bytes, zero-padded in CHIP_ID.
	if _, err := rand.Read(snpabi.HWID(opts.Product, e.chipID[:])); err != nil {
		return nil, err
	}
	if err := e.generateChain(time.Now()); err != nil {
		return nil, fmt.Errorf("snp emulator: generating the development chain: %w", err)
	}
	return e, nil
}

// generateChain creates the keys and certificates, valid from an hour before
// now for ten years.
func (e *Emulator) generateChain(now time.Time) error {
	var err error
	if e.arkKey, err = rsa.GenerateKey(rand.Reader, rsaKeyBits); err != nil {
		return err
	}
	if e.askKey, err = rsa.GenerateKey(rand.Reader, rsaKeyBits); err != nil {
		return err
	}
	if e.leafKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return err
	}
	notBefore, notAfter := now.Add(-time.Hour), now.AddDate(10, 0, 0)
	product := e.opts.Product

	arkTmpl := caTemplate("ARK-"+product, 1, notBefore, notAfter)
	arkDER, err := x509.CreateCertificate(rand.Reader, arkTmpl, arkTmpl, &e.arkKey.PublicKey, e.arkKey)
	if err != nil {
		return err
	}
	if e.ark, err = x509.ParseCertificate(arkDER); err != nil {
		return err
	}

	askCN := "SEV-" + product
	if e.opts.SigningKey == "VLEK" {
		askCN = "SEV-VLEK-" + product
	}
	askDER, err := x509.CreateCertificate(rand.Reader, caTemplate(askCN, 2, notBefore, notAfter), e.ark, &e.askKey.PublicKey, e.arkKey)
	if err != nil {
		return err
	}
	if e.ask, err = x509.ParseCertificate(askDER); err != nil {
		return err
	}

	leafDER, err := x509.CreateCertificate(rand.Reader, e.leafTemplate(notBefore, notAfter), e.ask, &e.leafKey.PublicKey, e.askKey)
	if err != nil {
		return err
	}
	e.leaf, err = x509.ParseCertificate(leafDER)
	return err
}

func emulatedName(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{attest.EmulatedOrganization}, OrganizationalUnit: []string{"Engineering"}}
}

func caTemplate(cn string, serial int64, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               emulatedName(cn),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SignatureAlgorithm:    x509.SHA384WithRSAPSS,
	}
}

// leafTemplate returns the VCEK or VLEK template with the KDS extensions
// that certify the emulated platform's TCB and chip ID.
func (e *Emulator) leafTemplate(notBefore, notAfter time.Time) *x509.Certificate {
	product := e.opts.Product
	ext := func(arcs []int, value []byte) pkix.Extension {
		return pkix.Extension{Id: append(append(asn1.ObjectIdentifier{}, snpabi.OIDKDS...), arcs...), Value: value}
	}
	integer := func(v uint64) []byte { b, _ := asn1.Marshal(int(v)); return b }
	ia5 := func(s string) []byte { b, _ := asn1.MarshalWithParams(s, "ia5"); return b }

	exts := []pkix.Extension{
		ext([]int{snpabi.KDSStructVersion}, integer(1)),
		ext([]int{snpabi.KDSProductName}, ia5(product)),
	}
	for _, f := range snpabi.TCBLayout(product) {
		exts = append(exts, ext([]int{snpabi.KDSSPL, f.SPLArc}, integer(snpabi.TCBByte(e.tcb, f.Byte))))
	}
	reservedBytes, reservedArcs := snpabi.ReservedTCBBytes(product)
	for i, arc := range reservedArcs {
		exts = append(exts, ext([]int{snpabi.KDSSPL, arc}, integer(snpabi.TCBByte(e.tcb, reservedBytes[i]))))
	}
	cn := "SEV-VCEK"
	if e.opts.SigningKey == "VLEK" {
		cn = "SEV-VLEK"
		exts = append(exts, ext([]int{snpabi.KDSCSPID}, ia5("cloister-emulated")))
	} else {
		hwid := snpabi.HWID(product, e.chipID[:])
		// AMD's KDS writes the raw chip ID without an ASN.1 tag.
		exts = append(exts, ext([]int{snpabi.KDSHWID}, append([]byte(nil), hwid...)))
	}
	return &x509.Certificate{
		SerialNumber:       big.NewInt(3),
		Subject:            emulatedName(cn),
		NotBefore:          notBefore,
		NotAfter:           notAfter,
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtraExtensions:    exts,
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
	}
}

// Name returns "emulated-snp".
func (e *Emulator) Name() string { return "emulated-snp" }

// Root returns the development ARK. Pass it as a trust anchor
// (attest.Options.TrustAnchors, or --trust-anchor) to verify the reports.
func (e *Emulator) Root() *x509.Certificate { return e.ark }

// Collateral returns the endorsement certificate (VCEK or VLEK) and the ASK
// (or ASVK), without the ARK: a development root in the collateral is never
// trusted.
func (e *Emulator) Collateral() *collateral.Set {
	s := &collateral.Set{}
	s.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "emulated " + e.opts.SigningKey, Raw: e.leaf.Raw, Certificate: e.leaf})
	s.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "emulated " + e.ask.Subject.CommonName, Raw: e.ask.Raw, Certificate: e.ask})
	return s
}

// Attest returns a signed version 3 ATTESTATION_REPORT whose REPORT_DATA is
// reportData zero-padded to 64 bytes. Evidence.Aux holds the certificate
// table (VCEK or VLEK, and ASK or ASVK) as an extended report returns it.
func (e *Emulator) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(reportData) > 64 {
		return nil, fmt.Errorf("snp emulator: report data is %d bytes, at most 64 fit in REPORT_DATA", len(reportData))
	}
	r := e.report(reportData)
	if err := e.sign(r); err != nil {
		return nil, err
	}
	return &attest.Evidence{Format: "snp", Data: r.marshal(), Aux: e.certTable()}, nil
}

// report fills in an unsigned report.
func (e *Emulator) report(reportData []byte) *Report {
	r := &Report{
		Version:        reportVersion3,
		GuestSVN:       1,
		Policy:         e.opts.Policy,
		SignatureAlgo:  sigAlgoECDSAP384SHA384,
		CurrentTCB:     e.tcb,
		PlatformInfo:   1, // SMT enabled
		ReportedTCB:    e.tcb,
		CommittedTCB:   e.tcb,
		LaunchTCB:      e.tcb,
		ChipID:         e.chipID,
		CurrentMajor:   1,
		CurrentMinor:   55,
		CurrentBuild:   21,
		CommittedMajor: 1,
		CommittedMinor: 55,
		CommittedBuild: 21,
	}
	if e.opts.SigningKey == "VLEK" {
		r.SignerInfo = signingKeyVLEK << 2
	}
	r.HasCPUID = true
	r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping = cpuidOf(e.opts.Product)
	copy(r.ReportData[:], reportData)
	copy(r.Measurement[:], e.opts.Measurement)
	copy(r.HostData[:], e.opts.HostData)
	_, _ = rand.Read(r.ReportID[:])
	for i := range r.ReportIDMA {
		r.ReportIDMA[i] = 0xff // no migration agent
	}
	return r
}

// sign sets r's signature over its signed bytes.
func (e *Emulator) sign(r *Report) error {
	unsigned := r.marshal()
	digest := sha512.Sum384(unsigned[:signedSize])
	sigR, sigS, err := ecdsa.Sign(rand.Reader, e.leafKey, digest[:])
	if err != nil {
		return fmt.Errorf("snp emulator: signing the report: %w", err)
	}
	sigR.FillBytes(r.SignatureR[:])
	sigS.FillBytes(r.SignatureS[:])
	return nil
}

func (e *Emulator) certTable() []byte {
	leafGUID := guidVCEK
	if e.opts.SigningKey == "VLEK" {
		leafGUID = guidVLEK
	}
	return marshalCertTable([]certTableEntry{
		{GUID: leafGUID, Data: e.leaf.Raw},
		{GUID: guidASK, Data: e.ask.Raw},
	})
}

// Files that Save writes.
const (
	fileARK      = "ark.pem"
	fileARKKey   = "ark-key.pem"
	fileASK      = "ask.pem"
	fileASKKey   = "ask-key.pem"
	fileLeaf     = "endorsement.pem"
	fileLeafKey  = "endorsement-key.pem"
	fileEmulator = "emulator.json"
)

// Save writes the keys (mode 0600), the certificates and the emulator's
// options to dir, creating it with mode 0700.
func (e *Emulator) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("snp emulator: %w", err)
	}
	state := emulatorState{
		Product: e.opts.Product, Debug: e.opts.Debug, Measurement: e.opts.Measurement,
		HostData: e.opts.HostData, Policy: e.opts.Policy, SigningKey: e.opts.SigningKey,
		ChipID: e.chipID[:], ReportedTCB: e.tcb,
	}
	stateJSON, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{
		{fileARK, pemCert(e.ark)},
		{fileASK, pemCert(e.ask)},
		{fileLeaf, pemCert(e.leaf)},
		{fileEmulator, append(stateJSON, '\n')},
	}
	for _, f := range files {
		if err := emudir.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("snp emulator: %w", err)
		}
	}
	for _, k := range []struct {
		name string
		key  crypto.Signer
	}{{fileARKKey, e.arkKey}, {fileASKKey, e.askKey}, {fileLeafKey, e.leafKey}} {
		if err := emudir.WriteKey(filepath.Join(dir, k.name), k.key); err != nil {
			return fmt.Errorf("snp emulator: %w", err)
		}
	}
	return nil
}

// LoadEmulator reloads an emulator saved by Save, checking that the keys
// match the certificates.
func LoadEmulator(dir string) (*Emulator, error) {
	stateJSON, err := os.ReadFile(filepath.Join(dir, fileEmulator))
	if err != nil {
		return nil, fmt.Errorf("snp emulator: %w", err)
	}
	var state emulatorState
	if err := json.Unmarshal(stateJSON, &state); err != nil {
		return nil, fmt.Errorf("snp emulator: %s: %w", fileEmulator, err)
	}
	opts := EmulatorOptions{Product: state.Product, Debug: state.Debug, Measurement: state.Measurement,
		HostData: state.HostData, Policy: state.Policy, SigningKey: state.SigningKey}
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	if len(state.ChipID) != snpabi.ChipIDSize {
		return nil, fmt.Errorf("snp emulator: %s: chip_id is %d bytes, expected %d", fileEmulator, len(state.ChipID), snpabi.ChipIDSize)
	}
	e := &Emulator{opts: opts, tcb: state.ReportedTCB}
	copy(e.chipID[:], state.ChipID)

	if e.ark, e.arkKey, err = readCertAndKey[*rsa.PrivateKey](dir, fileARK, fileARKKey); err != nil {
		return nil, err
	}
	if e.ask, e.askKey, err = readCertAndKey[*rsa.PrivateKey](dir, fileASK, fileASKKey); err != nil {
		return nil, err
	}
	if e.leaf, e.leafKey, err = readCertAndKey[*ecdsa.PrivateKey](dir, fileLeaf, fileLeafKey); err != nil {
		return nil, err
	}
	if !attest.IsEmulated(e.ark) {
		return nil, fmt.Errorf("snp emulator: %s is not a development root (its organization is not %q)", filepath.Join(dir, fileARK), attest.EmulatedOrganization)
	}
	return e, nil
}

// readCertAndKey reads the certificate certFile and its key keyFile from
// dir and checks that they match.
func readCertAndKey[K crypto.Signer](dir, certFile, keyFile string) (*x509.Certificate, K, error) {
	cert, key, err := emudir.ReadCertAndKey[K](filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	if err != nil {
		return nil, key, fmt.Errorf("snp emulator: %w; restore the file or create the emulator again", err)
	}
	return cert, key, nil
}
