package token

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// maxChainLength bounds the x5c header; real chains have three entries.
const maxChainLength = 8

// headerCertificates decodes the protected header's x5c member: standard
// base64 DER certificates, leaf first (RFC 7515, section 4.1.6). It returns
// nil when the header has none.
func headerCertificates(tok *Token) ([]*x509.Certificate, error) {
	protected, _, _ := strings.Cut(tok.Raw, ".")
	raw, err := base64.RawURLEncoding.DecodeString(protected)
	if err != nil {
		return nil, err
	}
	// A map matches member names exactly, as go-jose does. A struct field
	// would also match "X5C", a parameter that go-jose treats as unknown.
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw, &header); err != nil {
		return nil, err
	}
	member, ok := header["x5c"]
	if !ok {
		return nil, nil
	}
	var encoded []string
	if err := json.Unmarshal(member, &encoded); err != nil {
		return nil, err
	}
	if len(encoded) > maxChainLength {
		return nil, fmt.Errorf("%d certificates, more than %d", len(encoded), maxChainLength)
	}
	var certs []*x509.Certificate
	for i, s := range encoded {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// verifyHeaderChain verifies the header's x5c chain to a root the caller
// supplied, then the token signature under the leaf's key.
func (v Verifier) verifyHeaderChain(ctx context.Context, tok *Token, certs []*x509.Certificate, opts attest.Options, c *attest.Claims) error {
	roots, err := attest.Roots(ctx, opts, collateral.Query{TEE: string(v.is.tee), At: opts.Time()}, nil)
	if err != nil {
		return err
	}
	if len(roots) == 0 {
		return attest.Errorf(attest.ErrCollateralMissing, "root", "no %s root certificate was supplied, so the token's x5c chain cannot be verified", v.is.service).
			WithFix("pass the " + v.is.service + " root CA certificate with --collateral or --trust-anchor; the root inside the token is not trusted by itself")
	}
	chain, err := verifyChain(certs, roots, opts.Time())
	if err != nil {
		// attest.VerifyChain's error names the certificate and the fix.
		return err
	}
	if err := checkSigningKey(certs[0].PublicKey, tok.Header.Algorithm); err != nil {
		return (&attest.Error{Kind: attest.ErrSignature, Field: "x5c", Err: err,
			Reason: fmt.Sprintf("the x5c signing certificate %q cannot verify the token", certs[0].Subject)}).
			WithFix("pass the token as " + v.is.service + " issued it")
	}
	if _, err := tok.JWS.Verify(certs[0].PublicKey); err != nil {
		return (&attest.Error{Kind: attest.ErrSignature, Field: "signature", Err: err,
			Reason: fmt.Sprintf("the %s signature does not verify under the x5c signing certificate %q", tok.Header.Algorithm, certs[0].Subject)}).
			WithFix("check that the token is unmodified")
	}
	c.TrustAnchor = attest.DescribeRoot(chain[len(chain)-1], nil)
	c.Chain = chainInfo(chain)
	c.Pass("x5c-chain")
	return nil
}
