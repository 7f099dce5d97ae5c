package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// keySource names where an issuer's signing keys come from.
type keySource int

const (
	// keysJWKS takes the key from the caller's JWKS; the key itself is the
	// trust anchor.
	keysJWKS keySource = iota
	// keysJWKSChain takes the key from the caller's JWKS and requires its
	// x5c chain to verify to a root the caller supplied.
	keysJWKSChain
	// keysHeaderChainOrJWKS verifies the token header's x5c chain to a
	// root the caller supplied, or uses the caller's JWKS when the header
	// has no x5c.
	keysHeaderChainOrJWKS
)

// issuer describes one attestation service's tokens.
type issuer struct {
	tee attest.TEE
	// service names the attestation service in messages.
	service string
	// algs is the signature algorithm allow-list.
	algs []jose.SignatureAlgorithm
	keys keySource
	// validIssuer reports whether an iss value is this service's.
	validIssuer func(iss string) bool
	// wantIssuer describes the valid iss values for messages.
	wantIssuer string
	// mapClaims maps the service's claims into c and returns the nonces
	// the token carries, for the comparison with an expected nonce.
	mapClaims func(claims claimSet, c *attest.Claims) ([][]byte, error)
}

// Verifier verifies the tokens of one attestation service. Use GCP, MAA or
// ITA: the zero value detects and verifies nothing.
type Verifier struct{ is *issuer }

// errNoIssuer is the error of the zero Verifier.
var errNoIssuer = attest.Errorf(attest.ErrUnsupported, "format", "the token verifier names no attestation service").
	WithFix("use token.GCP, token.MAA or token.ITA")

// Name returns the format name (gcp-token, maa-token, ita-token).
func (v Verifier) Name() string {
	if v.is == nil {
		return ""
	}
	return string(v.is.tee)
}

// Detect reports whether data holds one compact JWS whose iss claim names
// this service. It does not verify anything. The iss member is read by its
// exact name, as Verify reads it. A struct tag would also match "ISS" or
// "Iss" in encoding/json, so a token carrying those next to iss could be
// routed to one service and verified as another's. The iss value is compared exactly,
// because RFC 7519 (section 4.1.1) makes it a case-sensitive string.
func (v Verifier) Detect(data []byte) bool {
	if v.is == nil {
		return false
	}
	raw, err := extract(data)
	if err != nil {
		return false
	}
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	// Duplicate members are left to Verify, which rejects them by name.
	var members map[string]json.RawMessage
	if json.Unmarshal(payload, &members) != nil {
		return false
	}
	var iss string
	if json.Unmarshal(members["iss"], &iss) != nil {
		return false
	}
	return v.is.validIssuer(iss)
}

// Verify checks the token's signature under the service key the caller
// supplied, the issuer and the token's validity window at opts.Time(), then
// maps the service's TEE claims and compares the nonce when opts.Nonce is
// set.
func (v Verifier) Verify(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	if v.is == nil {
		return nil, errNoIssuer
	}
	tok, err := Parse(ev.Data, v.is.algs)
	if err != nil {
		return nil, attest.Malformed("token", fmt.Sprintf("invalid %s token (allowed algorithms: %s)", v.is.service, algNames(v.is.algs)), err)
	}
	c := &attest.Claims{TEE: v.is.tee, SigningKey: v.is.service + " token signing key", VerifiedAt: opts.Time().UTC()}
	if err := v.verifySignature(ctx, tok, opts, c); err != nil {
		return nil, err
	}
	// A development root passed as a trust anchor proves no attestation
	// service, so the appraisal must see the token as emulated.
	c.Emulated = c.TrustAnchor.Kind == attest.AnchorEmulatedRoot
	c.Pass("jws-signature")
	c.SetAttribute("signing_algorithm", tok.Header.Algorithm)

	claims := claimSet(tok.Claims)
	if err := v.checkIssuer(claims, c); err != nil {
		return c, err
	}
	if err := checkTimes(c, claims, opts.Time()); err != nil {
		return c, err
	}
	if err := checkAudience(c, claims, opts.Audience); err != nil {
		return c, err
	}
	nonces, err := v.is.mapClaims(claims, c)
	if err != nil {
		return c, err
	}
	return c, checkNonce(c, nonces, opts.Nonce)
}

func (v Verifier) checkIssuer(claims claimSet, c *attest.Claims) error {
	iss, _, err := claims.text("iss")
	if err != nil {
		return attest.Malformed("iss", "invalid issuer claim", err)
	}
	if !v.is.validIssuer(iss) {
		c.Fail("issuer", "unexpected issuer")
		return attest.Errorf(attest.ErrUnsupported, "iss", "the token's issuer %q is not %s", iss, v.is.service).
			WithValues(iss, v.is.wantIssuer).
			WithFix("pass the token with --format naming its issuer's format, or a token from " + v.is.service)
	}
	c.SetAttribute("issuer", iss)
	c.Pass("issuer")
	return nil
}

// issuerHost returns the host of an issuer URL of the form
// "https://host", the only form the services' iss claims take. User
// information, a port, a path (even "/"), a query or a fragment make the
// URL invalid, so that no text after the host can pass a host check.
func issuerHost(iss string) (string, bool) {
	u, err := url.Parse(iss)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Port() != "" || iss != "https://"+u.Host {
		return "", false
	}
	return u.Host, true
}

// verifySignature finds the signing key by the issuer's key source,
// verifies the signature and records the trust anchor in c.
func (v Verifier) verifySignature(ctx context.Context, tok *Token, opts attest.Options, c *attest.Claims) error {
	if v.is.keys == keysHeaderChainOrJWKS {
		certs, err := headerCertificates(tok)
		if err != nil {
			return attest.Malformed("x5c", "invalid x5c header", err)
		}
		if len(certs) > 0 {
			return v.verifyHeaderChain(ctx, tok, certs, opts, c)
		}
	}
	keys, skips, err := jwksKeys(ctx, opts, v.is.tee, tok.Header)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		reason := fmt.Sprintf("no supplied JSON Web Key matches the token's kid %q and alg %s (%d keys supplied)", tok.Header.KeyID, tok.Header.Algorithm, len(skips))
		if len(skips) > 0 {
			reason += ": " + describeSkips(skips)
		}
		return attest.Errorf(attest.ErrCollateralMissing, "kid", "%s", reason).
			WithFix("pass the " + v.is.service + " signing keys (JWKS) that were current when the token was issued with --collateral or --trust-anchor")
	}
	var last error
	for i, k := range keys {
		reason, err := v.verifyWithKey(ctx, tok, k, opts, c)
		if err == nil {
			return nil
		}
		if i < len(keys)-1 {
			skips = append(skips, keySkip{kid: k.JWK.KeyID, source: k.Source, reason: reason})
		}
		last = err
	}
	if len(skips) == 0 {
		return last
	}
	// Wrap the last key's error, so that its kind, reason and fix stay, and
	// name why every other key was skipped.
	return &attest.Error{Kind: errorKind(last), Field: "kid", Err: last,
		Reason: fmt.Sprintf("none of the %d supplied keys verifies the token, because the others were skipped (%s) and the last one failed", len(skips)+1, describeSkips(skips))}
}

// errorKind returns the kind of a Cloister error, or ErrSignature for any
// other error.
func errorKind(err error) error {
	var ae *attest.Error
	if errors.As(err, &ae) && ae.Kind != nil {
		return ae.Kind
	}
	return attest.ErrSignature
}

// verifyWithKey verifies the token under one JWKS key and, on success,
// records the trust anchor and the chain in c. On failure it returns a
// short reason for a list of skipped keys together with the full error.
func (v Verifier) verifyWithKey(ctx context.Context, tok *Token, k signingKey, opts attest.Options, c *attest.Claims) (string, error) {
	anchor, chain, err := v.checkKeyChain(ctx, k, opts)
	if err != nil {
		return "x5c chain not verified", err
	}
	if err := checkSigningKey(k.JWK.Key, tok.Header.Algorithm); err != nil {
		return "key type mismatch: " + err.Error(), &attest.Error{Kind: attest.ErrSignature, Field: "kid", Err: err,
			Reason: fmt.Sprintf("the key with kid %q from %s cannot verify the token", k.JWK.KeyID, k.Source),
			Fix:    "pass the " + v.is.service + " signing keys (JWKS) as the service publishes them"}
	}
	if _, err := tok.JWS.Verify(k.JWK.Key); err != nil {
		return "signature does not verify", &attest.Error{Kind: attest.ErrSignature, Field: "signature", Err: err,
			Reason: fmt.Sprintf("the %s signature does not verify under the key with kid %q from %s", tok.Header.Algorithm, k.JWK.KeyID, k.Source),
			Fix:    "check that the token is unmodified and that the JWKS is the one that was current when the token was issued"}
	}
	c.TrustAnchor, c.Chain = anchor, chain
	if chain != nil {
		c.Pass("x5c-chain")
	}
	return "", nil
}

// checkKeyChain returns the trust anchor of a JWKS key: the key itself, or
// for issuers whose keys carry x5c chains, the caller's root the chain
// verifies to.
func (v Verifier) checkKeyChain(ctx context.Context, k signingKey, opts attest.Options) (attest.TrustAnchorRef, []attest.CertInfo, error) {
	if v.is.keys != keysJWKSChain {
		return keyAnchor(k), nil, nil
	}
	roots, err := attest.Roots(ctx, opts, collateral.Query{TEE: string(v.is.tee), At: opts.Time()}, nil)
	if err != nil {
		return attest.TrustAnchorRef{}, nil, err
	}
	if len(roots) == 0 {
		return attest.TrustAnchorRef{}, nil, attest.Errorf(attest.ErrCollateralMissing, "root", "no %s root certificate was supplied, so the signing key's x5c chain cannot be verified", v.is.service).
			WithFix("pass the " + v.is.service + " root CA certificate with --collateral or --trust-anchor")
	}
	chain, err := verifyChain(k.JWK.Certificates, roots, opts.Time())
	if err != nil {
		return attest.TrustAnchorRef{}, nil, &attest.Error{Kind: attest.ErrChain, Field: "x5c",
			Reason: fmt.Sprintf("the x5c chain of the JWKS key with kid %q does not verify", k.JWK.KeyID), Err: err}
	}
	return attest.DescribeRoot(chain[len(chain)-1], nil), chainInfo(chain), nil
}

// checkNonce compares the token's nonces with the expected one, when the
// caller set one.
func checkNonce(c *attest.Claims, nonces [][]byte, want []byte) error {
	if len(want) == 0 {
		c.Skip("nonce", false, "no expected nonce was given")
		return nil
	}
	for _, n := range nonces {
		if bytes.Equal(n, want) {
			c.Pass("nonce")
			return nil
		}
	}
	c.Fail("nonce", "the token's nonce differs from the expected nonce")
	got := "none"
	if len(nonces) > 0 {
		got = hex.EncodeToString(nonces[0])
	}
	return attest.Errorf(attest.ErrBinding, "nonce", "the token's nonce differs from the expected nonce").
		WithValues(got, hex.EncodeToString(want)).
		WithFix("request a fresh token with the expected nonce; a different nonce means a replayed or foreign token")
}
