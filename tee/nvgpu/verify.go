package nvgpu

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

func init() { attest.Register(&Verifier{}) }

// Verifier verifies NVIDIA GPU confidential-computing evidence. The zero
// value is ready to use and safe for concurrent use. It keeps a cache of
// verified certificate chains and one of verified RIMs.
type Verifier struct {
	chains attest.ChainCache
	rims   rimCache
}

// Name returns "nvidia-gpu".
func (*Verifier) Name() string { return string(attest.TEENVGPU) }

// Detect reports whether data is the hexadecimal text of an SPDM 1.1
// GET_MEASUREMENTS exchange or a JSON array of such GPU reports.
func (*Verifier) Detect(data []byte) bool { return detect(data) }

// gpuResult is one verified GPU.
type gpuResult struct {
	evidence GPUEvidence
	report   *Report
	chain    []*x509.Certificate
	fwid     []byte
	// rims are the RIMs that checkRIMs applied, whose signing chains the
	// ocsp check covers.
	rims gpuRIMs
}

// Verify checks every GPU of the evidence: the SPDM signature under the
// device certificate, the certificate chain to the NVIDIA Device Identity
// CA at the verification time, the FWID binding between the certificate
// and the report, and the nonce. Every GPU must pass. The device
// certificates come from the evidence (multi-GPU form), from ev.Aux (PEM),
// or from the collateral. The roots follow attest.Roots, except that a
// root inside a chain file is never a trust anchor. The measurement blocks
// are compared with the driver and VBIOS RIMs among the collateral (see
// checkRIMs). The device and RIM signing certificates are checked for
// revocation with the OCSP responses among the collateral, which an online
// source fetches (see checkOCSP).
func (v *Verifier) Verify(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	gpus, err := ParseEvidence(ev.Data)
	if err != nil {
		return nil, err
	}
	reports := make([]*Report, len(gpus))
	for i, g := range gpus {
		if reports[i], err = ParseReport(g.Report); err != nil {
			return nil, gpuError(i, len(gpus), err)
		}
	}

	at := opts.Time()
	embedded, err := embeddedRoots()
	if err != nil {
		return nil, attest.Errorf(attest.ErrChain, "root", "%v", err).WithFix("rebuild Cloister from an unmodified source tree")
	}
	q := collateral.Query{TEE: string(attest.TEENVGPU), At: at}
	set, err := opts.CollateralFor(ctx, q)
	if err != nil {
		return nil, err
	}
	anchorOpts := opts
	anchorOpts.Collateral = withoutChainRoots(set)
	roots, err := attest.Roots(ctx, anchorOpts, q, embedded)
	if err != nil {
		return nil, err
	}
	if roots, err = withoutRIMRoot(roots, embedded); err != nil {
		return nil, err
	}
	pool := nonRoots(set.Certificates())
	if len(ev.Aux) > 0 {
		aux, err := parsePEMChain(ev.Aux, "aux")
		if err != nil {
			return nil, err
		}
		pool = append(nonRoots(aux), pool...)
	}

	results := make([]*gpuResult, len(gpus))
	for i, g := range gpus {
		r, err := v.verifyGPU(g, reports[i], pool, roots, at)
		if err != nil {
			return nil, gpuError(i, len(gpus), err)
		}
		results[i] = r
	}

	claims := newClaims(results, embedded, at)
	rimAnchors, err := rimRoots(ctx, anchorOpts, q, embedded)
	if err == nil {
		err = v.checkRIMs(claims, results, set.OfKind(collateral.KindXML), rimAnchors, at)
	}
	if err != nil {
		// The ocsp check covers the signing chains of the applied RIMs,
		// which are known only once the RIM check passed.
		claims.Skip(ocspCheck, false, "not checked, because the RIM check failed")
		return claims, err
	}
	if err := checkOCSP(ctx, claims, results, opts, set, at); err != nil {
		return claims, err
	}
	if err := checkNonces(claims, results, opts.Nonce); err != nil {
		return claims, err
	}
	return claims, nil
}

// verifyGPU verifies one GPU's report against its certificates.
func (v *Verifier) verifyGPU(g GPUEvidence, report *Report, pool, roots []*x509.Certificate, at time.Time) (*gpuResult, error) {
	candidates := nonRoots(g.Chain)
	if len(candidates) == 0 {
		candidates = pool
	}
	if len(candidates) == 0 {
		return nil, attest.Errorf(attest.ErrCollateralMissing, "device certificate chain", "no GPU device certificate was supplied, so the report signature cannot be checked").
			WithFix("pass the GPU's certificate chain (PEM, leaf first) with --collateral")
	}
	intermediates := append(append([]*x509.Certificate{}, candidates...), pool...)

	leaf, err := findSigner(report, leafCandidates(candidates, intermediates))
	if err != nil {
		return nil, err
	}
	chain, err := v.verifyChain(leaf, intermediates, roots, at)
	if err != nil {
		return nil, err
	}
	if err := checkDeviceKeyUsage(chain); err != nil {
		return nil, err
	}
	if err := checkArch(g.Arch, chain); err != nil {
		return nil, err
	}
	fwid, err := checkFWID(report, leaf)
	if err != nil {
		return nil, err
	}
	return &gpuResult{evidence: g, report: report, chain: chain, fwid: fwid}, nil
}

// verifyChain returns the verified chain, leaf first, from the cache when
// the same certificates verified before and are valid at at.
func (v *Verifier) verifyChain(leaf *x509.Certificate, intermediates, roots []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	ders := make([][]byte, 0, 1+len(intermediates)+len(roots))
	ders = append(ders, leaf.Raw)
	for _, c := range intermediates {
		ders = append(ders, c.Raw)
	}
	for _, r := range roots {
		ders = append(ders, r.Raw)
	}
	key := attest.ChainKey(ders...)
	if chain, ok := v.chains.Lookup(key, at); ok {
		return chain, nil
	}
	chain, err := attest.VerifyChain(leaf, intermediates, roots, at)
	if err != nil {
		return nil, err
	}
	v.chains.Store(key, chain)
	return chain, nil
}

// nonRoots drops self-issued certificates (subject equal to issuer): a
// root that arrives with the evidence or a chain file is never trusted by
// being there. Self-signed certificates in the collateral reach the trust
// decision only through attest.Roots. Comparing names, not signatures,
// keeps this free of public-key operations.
func nonRoots(certs []*x509.Certificate) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(certs))
	for _, c := range certs {
		if !selfIssued(c) {
			out = append(out, c)
		}
	}
	return out
}

// withoutChainRoots returns set without the self-issued certificates that
// came from a file holding other certificates too. A device chain file ends
// with a copy of the root, and that copy must not make its own chain
// trusted, just as a root inside the evidence is not. A root in a file of
// its own, or added without a source, stays a caller-supplied anchor.
func withoutChainRoots(set *collateral.Set) *collateral.Set {
	chainFiles := map[string]bool{}
	for _, it := range set.OfKind(collateral.KindCertificate) {
		if it.Source != "" && !selfIssued(it.Certificate) {
			chainFiles[it.Source] = true
		}
	}
	out := &collateral.Set{Ignored: set.Ignored}
	for _, it := range set.Items {
		if it.Kind == collateral.KindCertificate && chainFiles[it.Source] && selfIssued(it.Certificate) {
			continue
		}
		out.Items = append(out.Items, it)
	}
	return out
}

func selfIssued(c *x509.Certificate) bool { return bytes.Equal(c.RawIssuer, c.RawSubject) }

// leafCandidates returns the certificates with a P-384 key whose subject
// names the issuer of no other certificate of the pool: the possible device
// leaf certificates. The signature check in findSigner picks the leaf, so
// names suffice here and no public-key operation is spent.
func leafCandidates(candidates, pool []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range candidates {
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P384() {
			continue
		}
		issuer := false
		for _, other := range pool {
			if other != c && bytes.Equal(other.RawIssuer, c.RawSubject) {
				issuer = true
				break
			}
		}
		if !issuer {
			out = append(out, c)
		}
	}
	return out
}

// findSigner returns the leaf certificate whose key verifies the report's
// ECDSA P-384 signature over SHA-384 of the request and the response up to
// the signature. SPDM 1.1 signs this transcript directly; the signing
// context prefix of SPDM 1.2 does not apply.
func findSigner(report *Report, leaves []*x509.Certificate) (*x509.Certificate, error) {
	if len(leaves) == 0 {
		return nil, attest.Errorf(attest.ErrChain, "device certificate chain", "no certificate with an ECDSA P-384 key can be the GPU's leaf certificate").
			WithFix("pass the GPU's certificate chain (PEM, leaf first) with --collateral")
	}
	digest := sha512.Sum384(report.Signed)
	sig := report.Response.Signature
	r := new(big.Int).SetBytes(sig[:SignatureSize/2])
	s := new(big.Int).SetBytes(sig[SignatureSize/2:])
	for _, leaf := range leaves {
		if ecdsa.Verify(leaf.PublicKey.(*ecdsa.PublicKey), digest[:], r, s) {
			return leaf, nil
		}
	}
	names := make([]string, len(leaves))
	for i, l := range leaves {
		names[i] = strconv.Quote(l.Subject.String())
	}
	return nil, attest.Errorf(attest.ErrSignature, "MEASUREMENTS.Signature",
		"the ECDSA P-384 signature over the GET_MEASUREMENTS request and MEASUREMENTS response does not verify under the device certificate %v: the report was altered or belongs to another GPU", names).
		WithFix("collect a fresh report together with this GPU's certificate chain")
}

// checkFWID compares the FWID of the report's opaque data with the FWID of
// the leaf certificate's TCG DICE TcbInfo extension, which binds the
// attestation key to the firmware that holds it.
func checkFWID(report *Report, leaf *x509.Certificate) ([]byte, error) {
	reported, err := report.Response.Fields.FWID()
	if err != nil {
		return nil, err
	}
	certified, err := certFWID(leaf)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(reported, certified) {
		return nil, attest.Errorf(attest.ErrBinding, "OpaqueData.fwid", "the report's FWID differs from the FWID in the device certificate %q", leaf.Subject.String()).
			WithValues(attest.Hex(reported).String(), attest.Hex(certified).String()).
			WithFix("pass the certificate chain of the GPU that produced the report")
	}
	return reported, nil
}

// archChipPrefixes maps the architecture names of evidence entries, in
// lower case because they compare ignoring case, to the prefix of their
// chip names.
var archChipPrefixes = map[string]string{"hopper": "GH", "blackwell": "GB"}

// checkArch requires the architecture that an evidence entry names, which
// no signature covers, to agree with the chip that the verified device
// certificates name, because the claims report it. An empty arch is not
// checked.
func checkArch(arch string, chain []*x509.Certificate) error {
	if arch == "" {
		return nil
	}
	chip := product(chain)
	prefix, known := archChipPrefixes[strings.ToLower(arch)]
	if known && chip != "" && strings.HasPrefix(chip, prefix) {
		return nil
	}
	return attest.Errorf(attest.ErrBinding, "arch", "the evidence names architecture %q, but the device certificate %q names chip %q. Hopper chips are named GH*, Blackwell chips GB*",
		arch, chain[0].Subject.String(), chip).
		WithFix("pass the arch that the GPU reports (HOPPER for GH100), or leave arch out")
}

// checkNonces requires every GPU to carry the same request nonce and, when
// the caller gave one, that nonce to equal it byte for byte. A longer
// expected value is not truncated to the 32-byte SPDM nonce.
func checkNonces(claims *attest.Claims, results []*gpuResult, want []byte) error {
	first := results[0].report.Request.Nonce[:]
	for i, r := range results[1:] {
		if !bytes.Equal(r.report.Request.Nonce[:], first) {
			claims.Fail("nonce", "the GPUs carry different nonces")
			return attest.Errorf(attest.ErrBinding, "nonce", "GPU %d carries a different nonce than GPU 0", i+1).
				WithValues(attest.Hex(r.report.Request.Nonce[:]).String(), attest.Hex(first).String()).
				WithFix("collect the evidence of every GPU with the same nonce")
		}
	}
	if len(want) == 0 {
		claims.Skip("nonce", false, "no expected nonce was given")
		return nil
	}
	if !bytes.Equal(first, want) {
		claims.Fail("nonce", "the request nonce differs from the expected nonce")
		return attest.Errorf(attest.ErrBinding, "nonce", "the GET_MEASUREMENTS nonce differs from the expected nonce").
			WithValues(attest.Hex(first).String(), attest.Hex(want).String()).
			WithFix("collect a new report with the expected nonce; an old report may be replayed")
	}
	claims.Pass("nonce")
	return nil
}

// gpuError names the GPU in err when the evidence has several.
func gpuError(i, n int, err error) error {
	if n == 1 {
		return err
	}
	if e, ok := err.(*attest.Error); ok {
		c := *e
		c.Field = fmt.Sprintf("GPU %d: %s", i, e.Field)
		return &c
	}
	return fmt.Errorf("GPU %d: %w", i, err)
}

// productPattern matches NVIDIA chip names such as GH100 or GB100.
var productPattern = regexp.MustCompile(`\b(G[A-Z]\d{3})\b`)

// product returns the GPU chip name from the certificate subjects, leaf
// first (CN=GH100 A01 GSP FMC LF).
func product(chain []*x509.Certificate) string {
	for _, c := range chain {
		if m := productPattern.FindStringSubmatch(c.Subject.CommonName); m != nil {
			return m[1]
		}
	}
	return ""
}
