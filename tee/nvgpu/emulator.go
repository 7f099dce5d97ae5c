package nvgpu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// MaxEmulatedGPUs bounds EmulatorOptions.GPUs: an HGX board has eight GPUs.
const MaxEmulatedGPUs = 8

// The emulated GPUs' identity and firmware. The versions and SKUs are
// plausible for an H100 in confidential-computing mode and consistent
// between the reports, the certificates and the RIMs. They carry no
// meaning beyond that.
const (
	emulatedChip          = "GH100"
	emulatedArch          = "HOPPER"
	emulatedDriverVersion = "550.90.07"
	emulatedProject       = "1010"
	emulatedProjectSKU    = "0200"
	emulatedChipSKU       = "882"
	// emulatedBlocks is the number of measurement blocks of a report.
	// Real Hopper reports have 64. Fewer keep the claims, which a KBS
	// token carries for every GPU, short.
	emulatedBlocks = 8
	// emulatedDriverBlocks is how many of the first blocks the driver RIM
	// covers. The VBIOS RIM covers the others.
	emulatedDriverBlocks = 4
)

// emulatedVBIOS is the VBIOS version in the opaque data's byte order,
// 96.00.9f.00.01 as NVIDIA prints it (see vbiosVersion).
var emulatedVBIOS = []byte{0x00, 0x9f, 0x00, 0x96, 0x01, 0x00, 0x00, 0x00}

// EmulatorOptions configure emulated NVIDIA Hopper GPUs. The zero value is
// one GPU.
type EmulatorOptions struct {
	// GPUs is the number of GPUs, from 1 (the default for 0) to
	// MaxEmulatedGPUs. Each has its own device certificates, and one
	// report covers them all, as on a multi-GPU machine.
	GPUs int
}

func (o *EmulatorOptions) normalize() error {
	if o.GPUs == 0 {
		o.GPUs = 1
	}
	if o.GPUs < 1 || o.GPUs > MaxEmulatedGPUs {
		return fmt.Errorf("nvgpu emulator: %d GPUs requested; use 1 to %d", o.GPUs, MaxEmulatedGPUs)
	}
	return nil
}

// Emulator produces NVIDIA GPU evidence in the real format: for each GPU,
// an SPDM 1.1 GET_MEASUREMENTS request and MEASUREMENTS response signed
// with ECDSA P-384 by the GPU's device leaf certificate, together with its
// certificate chain. The chain runs from the leaf through a per-GPU BROM
// certificate and a development GH100 identity CA to a development Device
// Identity CA generated on this machine. It also signs a driver and a
// VBIOS RIM (SWID tags with an enveloped XML-DSig signature) under a
// development RIM root, whose golden values are the reports' measurement
// blocks.
//
// Every certificate carries the subject organization
// attest.EmulatedOrganization, so verifiers label the evidence as emulated
// and trust it only when both development roots are passed as trust
// anchors for nvidia-gpu.
type Emulator struct {
	opts EmulatorOptions
	// fwid is the FWID of the emulated GSP firmware, the same on every
	// GPU, as on GPUs that run one firmware release.
	fwid []byte

	root, identityCA       *x509.Certificate
	rootKey, identityCAKey *ecdsa.PrivateKey
	rimRoot, rimSigner     *x509.Certificate
	rimRootKey, rimKey     *ecdsa.PrivateKey
	gpus                   []*emulatedGPU
}

// emulatedGPU is one GPU: its BROM and leaf certificates and keys.
type emulatedGPU struct {
	uuid             string
	brom, leaf       *x509.Certificate
	bromKey, leafKey *ecdsa.PrivateKey
}

// NewEmulator generates the development roots, the GH100 identity CA, the
// RIM signing certificate and each GPU's BROM and leaf certificates in
// memory, with new keys.
func NewEmulator(opts EmulatorOptions) (*Emulator, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	sum := sha512.Sum384([]byte("cloister emulated GH100 GSP firmware"))
	e := &Emulator{opts: opts, fwid: sum[:]}
	if err := e.generate(time.Now()); err != nil {
		return nil, fmt.Errorf("nvgpu emulator: generating the development chains: %w", err)
	}
	return e, nil
}

// generate creates the keys and certificates, valid from an hour before
// now for ten years.
func (e *Emulator) generate(now time.Time) error {
	notBefore, notAfter := now.Add(-time.Hour), now.AddDate(10, 0, 0)
	var err error
	if e.rootKey, e.root, err = newCA("Cloister emulated NVIDIA Device Identity CA", "", nil, nil, notBefore, notAfter); err != nil {
		return err
	}
	if e.identityCAKey, e.identityCA, err = newCA("Cloister emulated NVIDIA GH100 Identity", "", e.root, e.rootKey, notBefore, notAfter); err != nil {
		return err
	}
	if e.rimRootKey, e.rimRoot, err = newCA("Cloister emulated NVIDIA CoRIM signing Root CA", "", nil, nil, notBefore, notAfter); err != nil {
		return err
	}
	if e.rimKey, err = newKey(); err != nil {
		return err
	}
	signer := leafTemplate("Cloister emulated NVIDIA RIM Signer", "", notBefore, notAfter)
	if e.rimSigner, err = issue(signer, e.rimRoot, &e.rimKey.PublicKey, e.rimRootKey); err != nil {
		return err
	}
	for range e.opts.GPUs {
		g, err := e.newGPU(notBefore, notAfter)
		if err != nil {
			return err
		}
		e.gpus = append(e.gpus, g)
	}
	return nil
}

// newGPU generates one GPU: a BROM certificate under the identity CA and a
// leaf certificate under the BROM certificate, whose TcbInfo extension
// carries the firmware's FWID. Both subjects carry the GPU's serial number,
// so that the BROM certificates of different GPUs have different names.
func (e *Emulator) newGPU(notBefore, notAfter time.Time) (*emulatedGPU, error) {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	serial := hex.EncodeToString(id)
	g := &emulatedGPU{uuid: gpuUUID()}
	var err error
	if g.bromKey, g.brom, err = newCA(emulatedChip+" A01 GSP BROM", serial, e.identityCA, e.identityCAKey, notBefore, notAfter); err != nil {
		return nil, err
	}
	if g.leafKey, err = newKey(); err != nil {
		return nil, err
	}
	tcbInfo, err := marshalTcbInfo(&g.leafKey.PublicKey, e.fwid)
	if err != nil {
		return nil, err
	}
	leaf := leafTemplate(emulatedChip+" A01 GSP FMC LF", serial, notBefore, notAfter)
	leaf.ExtraExtensions = []pkix.Extension{{Id: oidTCGDICETcbInfo, Value: tcbInfo}}
	if g.leaf, err = issue(leaf, g.brom, &g.leafKey.PublicKey, g.bromKey); err != nil {
		return nil, err
	}
	return g, nil
}

// marshalTcbInfo encodes the TCG DICE TcbInfo extension in the layout of
// NVIDIA's GPU leaf certificates, which certFWID reads: a version, the
// SubjectPublicKeyInfo of the attestation key and one SHA-384 FWID in the
// outer SEQUENCE.
func marshalTcbInfo(pub *ecdsa.PublicKey, fwidValue []byte) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct {
		Version int
		SPKI    asn1.RawValue
		FWID    fwid
	}{1, asn1.RawValue{FullBytes: spki}, fwid{HashAlg: oidSHA384, Digest: fwidValue}})
}

// gpuUUID returns a GPU UUID in NVIDIA's form, GPU- and a random version 4
// UUID.
func gpuUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return "GPU-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }

func emulatedName(cn, serial string) pkix.Name {
	return pkix.Name{CommonName: cn, SerialNumber: serial, Organization: []string{attest.EmulatedOrganization}}
}

// serialNumber returns a random positive 127-bit certificate serial number.
func serialNumber() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b)
}

// newCA generates a P-384 key and a CA certificate for it, issued by
// parent with parentKey, or self-signed when parent is nil.
func newCA(cn, serial string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, notBefore, notAfter time.Time) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(), Subject: emulatedName(cn, serial),
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
		SignatureAlgorithm: x509.ECDSAWithSHA384,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	cert, err := issue(tmpl, parent, &key.PublicKey, parentKey)
	return key, cert, err
}

func leafTemplate(cn, serial string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: serialNumber(), Subject: emulatedName(cn, serial),
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SignatureAlgorithm:    x509.ECDSAWithSHA384,
	}
}

func issue(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, parentKey *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// Name returns "emulated-nvidia-gpu".
func (e *Emulator) Name() string { return "emulated-" + string(attest.TEENVGPU) }

// Roots returns the development Device Identity CA and the development RIM
// root. Pass both as trust anchors for nvidia-gpu
// (attest.Options.TrustAnchors, or --trust-anchor nvidia-gpu=FILE) to
// verify the evidence and the RIMs.
func (e *Emulator) Roots() []*x509.Certificate { return []*x509.Certificate{e.root, e.rimRoot} }

// Collateral returns the driver and VBIOS RIMs, signed now, as XML
// collateral. The device certificates travel in the evidence.
func (e *Emulator) Collateral() (*collateral.Set, error) {
	files, err := e.RIMFiles()
	if err != nil {
		return nil, err
	}
	s := &collateral.Set{}
	for _, name := range []string{fileDriverRIM, fileVBIOSRIM} {
		s.Add(&collateral.Item{Kind: collateral.KindXML, Source: "emulated " + name, Raw: files[name]})
	}
	return s, nil
}

// Attest returns the evidence of every GPU for one GET_MEASUREMENTS
// request whose 32-byte nonce is reportData, zero-padded when shorter. It
// returns an error when reportData is longer than 32 bytes. A KBS client
// passes the first 32 bytes of the device runtime-data digest, as
// Trustee's NVIDIA attester does.
//
// Evidence.Data is a JSON array with one entry per GPU, as the NVIDIA
// attestation SDK writes it. An entry has the report as hexadecimal text
// (attestationReportHexStr) and the PEM certificate chain from the leaf
// to the development root in base64 (certChainBase64Encoded). It also has
// the arch and uuid members that Trustee's attester adds.
func (e *Emulator) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nonce, err := reportDataNonce(reportData)
	if err != nil {
		return nil, fmt.Errorf("nvgpu emulator: %w", err)
	}

	entries := make([]gpuEntry, len(e.gpus))
	for i, g := range e.gpus {
		report, err := e.report(g, nonce)
		if err != nil {
			return nil, fmt.Errorf("nvgpu emulator: GPU %d: %w", i, err)
		}
		entries[i] = gpuEntry{
			ReportHex:   hex.EncodeToString(report),
			ChainBase64: base64.StdEncoding.EncodeToString(e.chainPEM(g)),
			Arch:        emulatedArch,
			UUID:        g.uuid,
		}
	}
	return entriesEvidence(entries)
}

// chainPEM returns a GPU's chain in PEM, leaf first, ending with the root
// as NVIDIA's chains do. The verifier never trusts that copy of the root.
func (e *Emulator) chainPEM(g *emulatedGPU) []byte {
	var out []byte
	for _, c := range []*x509.Certificate{g.leaf, g.brom, e.identityCA, e.root} {
		out = append(out, pemCert(c)...)
	}
	return out
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// GPUCount returns the number of emulated GPUs.
func (e *Emulator) GPUCount() int { return len(e.gpus) }

// measurement returns the value of measurement block index (from 1): the
// SHA-384 of a fixed text that names the index, the same on every GPU.
func measurement(index int) []byte {
	sum := sha512.Sum384([]byte("cloister emulated GH100 measurement " + strconv.Itoa(index)))
	return sum[:]
}
