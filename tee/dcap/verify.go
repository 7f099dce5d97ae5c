package dcap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/pcsdoc"
)

func init() { attest.Register(NewVerifier()) }

// Check names recorded in Claims.Checks.
const (
	checkPCKChain        = "pck-chain"
	checkQEReportSig     = "qe-report-signature"
	checkQEReportData    = "qe-report-data"
	checkQuoteSig        = "quote-signature"
	checkPCKCRL          = "pck-crl"
	checkRootCRL         = "root-ca-crl"
	checkTCBInfo         = "tcb-info"
	checkQEIdentity      = "qe-identity"
	checkTCBEvaluation   = "tcb-evaluation"
	checkQEIdentityMatch = "qe-identity-match"
	checkNonce           = "nonce"
	checkEventLog        = "event-log"
)

// Verifier verifies DCAP quotes. Its zero value is not usable; call
// NewVerifier. It is safe for concurrent use.
type Verifier struct {
	// cache remembers verified signatures (certificate links, CRLs,
	// collateral documents) by digest.
	cache verifiedSet
	// Parsed forms of the PCK chain, TCB Info and QE Identity, by digest
	// of their bytes. Only inputs that parsed are stored.
	chains     memo[[32]byte, *pckChain]
	tcbInfos   memo[[32]byte, *parsedTCBInfo]
	identities memo[[32]byte, *parsedIdentity]
	// signers maps a parsed collateral document to the SHA-256 of the
	// certificate whose key verified its signature.
	signers memo[*pcsdoc.Document, [32]byte]
	// roots maps the digest of the candidate root certificates to the
	// roots attest.Roots selected from them.
	roots memo[[32]byte, *rootSet]
	// paths maps a PCK chain and a root set to the verified path and its
	// summary for the claims.
	paths memo[pathKey, *verifiedPath]
	// crls remembers CRLs whose signature verified under an issuer.
	crls memo[crlKey, struct{}]
	// documentPaths maps a collateral document, its signer and a root set
	// to the signer's verified path.
	documentPaths memo[documentPathKey, []*x509.Certificate]
}

type documentPathKey struct {
	doc    *pcsdoc.Document
	signer *x509.Certificate
	roots  *rootSet
}

// rootSet is the result of one root selection, shared by every
// verification with the same candidate roots.
type rootSet struct{ certs []*x509.Certificate }

type pathKey struct {
	chain *pckChain
	roots *rootSet
}

// verifiedPath is a PCK path whose signatures verified, with the summary
// the claims carry. Validity windows are checked on every use.
type verifiedPath struct {
	path   []*x509.Certificate
	infos  []attest.CertInfo
	anchor attest.TrustAnchorRef
}

// NewVerifier returns a DCAP verifier with empty caches.
func NewVerifier() *Verifier { return &Verifier{} }

// Name returns "dcap".
func (*Verifier) Name() string { return "dcap" }

// Detect reports whether data starts with a quote header of version 3, 4
// or 5 with an ECDSA-P256 attestation key and a known TEE type.
func (*Verifier) Detect(data []byte) bool { return looksLikeQuote(data) }

// pckChain is the parsed certification data of a quote.
type pckChain struct {
	leaf  *x509.Certificate
	certs []*x509.Certificate
	ext   *PCKExtensions
}

// parsedTCBInfo is the parse result of one TCB Info file. err is set, and
// the other fields are nil, when the file does not parse. Parsing depends
// only on the file's bytes, so a failure is cached like a success.
type parsedTCBInfo struct {
	info *TCBInfo
	doc  *pcsdoc.Document
	err  error
}

// parsedIdentity is the parse result of one QE Identity file, cached the
// same way as parsedTCBInfo.
type parsedIdentity struct {
	id  *EnclaveIdentity
	doc *pcsdoc.Document
	err error
}

func (v *Verifier) parsePCKChain(pemData []byte) (*pckChain, error) {
	key := sha256.Sum256(pemData)
	if c, ok := v.chains.get(key); ok {
		return c, nil
	}
	certs, err := parsePEMChain(pemData)
	if err != nil {
		return nil, err
	}
	// Intel's PCK certificates, and only they, carry this phrase in their
	// common name; QVL rejects any other leaf before reading its
	// extensions.
	if !strings.Contains(certs[0].Subject.CommonName, "SGX PCK Certificate") {
		return nil, attest.Errorf(attest.ErrChain, "PCK certificate", "the leaf %q is not an SGX PCK certificate", certs[0].Subject.CommonName).
			WithFix("the quote's certification data must start with the platform's PCK certificate")
	}
	// The key type is checked before the chain, so that a PCK certificate
	// outside Intel's profile fails on its key whatever its chain contains.
	if _, err := pckPublicKey(certs[0]); err != nil {
		return nil, err
	}
	ext, err := PCKExtensionsFromCert(certs[0])
	if err != nil {
		return nil, err
	}
	c := &pckChain{leaf: certs[0], certs: certs, ext: ext}
	v.chains.set(key, c)
	return c, nil
}

// Verify verifies a DCAP quote at opts.Time(). It checks the PCK chain to
// the Intel SGX Root CA (or the caller's root), the QE report signature and
// its binding of the attestation key, the quote signature and the CRLs.
// Then it verifies the TCB Info and QE Identity and derives the TCB status.
// For a TDX quote, ev.Aux is the guest's CC event log, if any, which must
// replay to the quote's RTMRs (ReplayEventLog). An SGX quote must come
// without one. Collateral that is absent is recorded as a required check that did not
// run. It is not an error here, so that the appraisal can name it.
func (v *Verifier) Verify(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	at := opts.Time()
	q, err := ParseQuote(ev.Data)
	if err != nil {
		return nil, err
	}
	if err := checkQEVendor(&q.Header); err != nil {
		return nil, err
	}
	chain, err := v.parsePCKChain(q.PCKChainPEM)
	if err != nil {
		return nil, err
	}
	query := collateral.Query{
		TEE: string(q.TEE()), At: at,
		FMSPC: strings.ToUpper(hex.EncodeToString(chain.ext.FMSPC)),
		PCEID: strings.ToUpper(hex.EncodeToString(chain.ext.PCEID)),
		PCKCA: pckCAKind(chain.leaf.Issuer.CommonName),
	}
	set, err := opts.CollateralFor(ctx, query)
	if err != nil {
		// A source that served nothing leaves the collateral missing, so
		// the error has that kind, with the source's failure as its cause.
		return nil, &attest.Error{Kind: attest.ErrCollateralMissing, Field: "collateral",
			Reason: "dcap: the collateral source failed", Err: err,
			Fix: "check the Intel PCS or PCCS address and the network, or pass the collateral with --collateral"}
	}
	roots, err := v.selectRoots(ctx, opts, query, set)
	if err != nil {
		return nil, fmt.Errorf("dcap: trust anchors: %w", err)
	}

	verified, err := v.verifyPCKPath(chain, roots, at)
	if err != nil {
		return nil, err
	}
	path := verified.path
	if err := verifyQuoteSignatures(q, chain.leaf); err != nil {
		return nil, err
	}

	c := newClaims(q, chain, verified, at)
	c.Pass(checkPCKChain)
	c.Pass(checkQEReportSig)
	c.Pass(checkQEReportData)
	c.Pass(checkQuoteSig)
	if err := checkReportDataNonce(c, opts.Nonce); err != nil {
		return c, err
	}
	if q.Trailing > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%d bytes after the end of the quote were ignored", q.Trailing))
	}

	// The event log and collateral checks continue after a failure, so
	// that the claims show the TCB status the collateral gives, but the
	// first failure decides.
	errs := []error{verifyEventLog(c, q, ev.Aux)}
	root := path[len(path)-1]
	errs = append(errs, v.checkCRL(c, set, checkPCKCRL, "PCK CRL", path[1], []*x509.Certificate{chain.leaf}, at))
	// A copy, because appending to a subslice would overwrite the cached
	// path.
	rootSubjects := slices.Clone(path[1 : len(path)-1])
	errs = append(errs, v.checkTCB(c, q, chain, set, roots, at, &rootSubjects)...)
	errs = append(errs, v.checkCRL(c, set, checkRootCRL, "Root CA CRL", root, rootSubjects, at))
	return c, firstError(errs)
}

// selectRoots returns attest.Roots for the query, cached by the digest of
// the certificates that could be roots (those naming themselves as issuer)
// in the trust anchors and the collateral, kept apart because emulated
// roots count only in the trust anchors. Fetched certificates are left out
// of the digest, as attest.Roots leaves them out. attest.Roots checks each
// candidate's self-signature, which would otherwise cost an ECDSA
// verification per candidate and quote.
func (v *Verifier) selectRoots(ctx context.Context, opts attest.Options, query collateral.Query, set *collateral.Set) (*rootSet, error) {
	h := sha256.New()
	for _, s := range []*collateral.Set{opts.Anchors(query.TEE), set} {
		h.Write([]byte{0xff})
		for _, it := range s.OfKind(collateral.KindCertificate) {
			if !it.Fetched && bytes.Equal(it.Certificate.RawIssuer, it.Certificate.RawSubject) {
				h.Write(it.SHA256[:])
			}
		}
	}
	var key [32]byte
	h.Sum(key[:0])
	if roots, ok := v.roots.get(key); ok {
		return roots, nil
	}
	// The roots must come from the set the key covers, so the source is not
	// asked again: an online source may answer differently.
	opts.Collateral = set
	certs, err := attest.Roots(ctx, opts, query, EmbeddedRoots())
	if err != nil {
		return nil, err
	}
	roots := &rootSet{certs: certs}
	v.roots.set(key, roots)
	return roots, nil
}

// verifyPCKPath returns the verified path from the PCK leaf to one of
// roots. Signatures are verified once per chain and root set; validity
// windows are checked at at on every call.
func (v *Verifier) verifyPCKPath(chain *pckChain, roots *rootSet, at time.Time) (*verifiedPath, error) {
	key := pathKey{chain: chain, roots: roots}
	if p, ok := v.paths.get(key); ok {
		for i, cert := range p.path {
			role := "PCK certificate"
			if i == len(p.path)-1 {
				role = "root"
			}
			if err := checkValidity(role, cert, at); err != nil {
				return nil, err
			}
		}
		return p, nil
	}
	path, err := v.verifyChain("PCK certificate", chain.leaf, chain.certs, roots.certs, at)
	if err != nil {
		return nil, err
	}
	// The PCK CRL covers the leaf and the Root CA CRL the PCK CA, so a CA
	// between them would go unchecked. QVL (PckCertVerifier.cpp) likewise
	// takes the chain as PCK certificate, intermediate CA and root.
	if len(path) != 3 {
		return nil, attest.Errorf(attest.ErrChain, "PCK certificate chain", "the path from the PCK certificate to the root has %d certificates, not 3 (PCK certificate, PCK CA, root)", len(path)).
			WithFix("the certification data must hold the PCK certificate issued by the Intel SGX PCK Platform or Processor CA, that CA and the root")
	}
	if err := checkIntelProfile("PCK certificate chain", path, []string{"PCK certificate", "PCK CA"},
		"collect the quote again from the platform, whose certification data must hold the PCK certificate chain as Intel PCS issues it"); err != nil {
		return nil, err
	}
	p := &verifiedPath{path: path, infos: chainInfos(path), anchor: attest.DescribeRoot(path[len(path)-1], EmbeddedRoots())}
	v.paths.set(key, p)
	return p, nil
}

// checkReportDataNonce requires the report data to start with the caller's
// nonce, when there is one. A quote carries no freshness value apart from
// REPORTDATA, so a TEE that binds a nonce places it there.
func checkReportDataNonce(c *attest.Claims, nonce []byte) error {
	if len(nonce) == 0 {
		c.Skip(checkNonce, false, "no expected nonce was given")
		return nil
	}
	if !bytes.HasPrefix(c.ReportData, nonce) {
		c.Fail(checkNonce, "REPORTDATA does not start with the nonce")
		return attest.Errorf(attest.ErrBinding, "REPORTDATA", "report data does not start with the expected nonce").
			WithValues(hex.EncodeToString(c.ReportData), hex.EncodeToString(nonce)).
			WithFix("request a fresh quote with the nonce as report data; when the TEE binds a hash of the nonce, compare that hash with --report-data instead of passing --nonce")
	}
	c.Pass(checkNonce)
	return nil
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// verifyQuoteSignatures checks the QE report signature under the PCK key,
// the QE report's binding of the attestation key, and the quote signature
// under the attestation key.
func verifyQuoteSignatures(q *Quote, leaf *x509.Certificate) error {
	pub, err := pckPublicKey(leaf)
	if err != nil {
		return err
	}
	if !pcsdoc.VerifyRawECDSA(pub, q.QEReport, q.QEReportSignature) {
		return attest.Errorf(attest.ErrSignature, "QE report signature", "the QE report signature does not verify under the PCK certificate's key").
			WithFix("the quote was altered or its certification data belongs to another platform; collect the quote again")
	}

	h := sha256.New()
	h.Write(q.AttestationKey)
	h.Write(q.QEAuthData)
	want := h.Sum(nil)
	got := q.QE.ReportData
	if string(got[:32]) != string(want) || !allZero(got[32:]) {
		return attest.Errorf(attest.ErrBinding, "QE report data", "the QE report does not bind the attestation key: REPORTDATA must be SHA-256(attestation key || QE authentication data) followed by zeros").
			WithValues(hex.EncodeToString(got[:]), hex.EncodeToString(want)+strings.Repeat("00", 32))
	}

	ak, err := parseRawP256Key(q.AttestationKey)
	if err != nil {
		return attest.Malformed("attestation key", "not a P-256 point", err)
	}
	if !pcsdoc.VerifyRawECDSA(ak, q.SignedData, q.Signature) {
		return attest.Errorf(attest.ErrSignature, "quote signature", "the quote signature does not verify under the attestation key").
			WithFix("the quote header or report body was altered; collect the quote again")
	}
	return nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

var (
	_ attest.Verifier    = (*Verifier)(nil)
	_ attest.Inspector   = (*Verifier)(nil)
	_ attest.Attester    = (*Emulator)(nil)
	_ attest.EventLogger = (*Emulator)(nil)
	_ attest.Attester    = (*TDXAttester)(nil)
	_ attest.EventLogger = (*TDXAttester)(nil)
	_ attest.Attester    = (*SGXAttester)(nil)
)
