package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// signingKey is a candidate key for a token signature.
type signingKey struct {
	JWK    jose.JSONWebKey
	Source string
}

// keySkip is a supplied key that did not verify the token, with the
// reason. It names the key by kid and source only, never by its material.
type keySkip struct {
	kid, source, reason string
}

func (k keySkip) String() string {
	kid := "without kid"
	if k.kid != "" {
		kid = fmt.Sprintf("kid %q", k.kid)
	}
	return fmt.Sprintf("%s from %s: %s", kid, k.source, k.reason)
}

// maxListedSkips bounds the keys that an error lists, because a JWKS of a
// large provider holds dozens.
const maxListedSkips = 8

// describeSkips lists the skipped keys and their reasons for an error.
func describeSkips(skips []keySkip) string {
	parts := make([]string, 0, min(len(skips), maxListedSkips)+1)
	for i, k := range skips {
		if i == maxListedSkips {
			parts = append(parts, fmt.Sprintf("and %d more", len(skips)-maxListedSkips))
			break
		}
		parts = append(parts, k.String())
	}
	return strings.Join(parts, "; ")
}

// jwksKeys returns the keys of every JWK and JWK Set document among the
// trust anchors and the collateral that match the token's kid and alg,
// and the other keys with the reason each was skipped. A key without alg
// matches any allowed algorithm; a key whose use is not "sig" never
// matches. Documents that are not JWK Sets are skipped.
func jwksKeys(ctx context.Context, opts attest.Options, tee attest.TEE, header jose.Header) ([]signingKey, []keySkip, error) {
	set, err := opts.CollateralFor(ctx, collateral.Query{TEE: string(tee), At: opts.Time()})
	if err != nil {
		return nil, nil, err
	}
	var out []signingKey
	var skips []keySkip
	for _, s := range []*collateral.Set{opts.Anchors(string(tee)), set} {
		for _, it := range s.OfKind(collateral.KindJWKS) {
			for _, k := range cachedJWKS(it) {
				if reason := keyMismatch(k, header); reason != "" {
					skips = append(skips, keySkip{kid: k.KeyID, source: it.Source, reason: reason})
					continue
				}
				out = append(out, signingKey{JWK: k, Source: it.Source})
			}
		}
	}
	return out, skips, nil
}

// keyMismatch returns why a JWK cannot be the token's signing key by its
// kid, alg and use members, or "" when it may be.
func keyMismatch(k jose.JSONWebKey, header jose.Header) string {
	switch {
	case header.KeyID != "" && k.KeyID != header.KeyID:
		return "kid mismatch"
	case k.Algorithm != "" && k.Algorithm != header.Algorithm:
		return fmt.Sprintf("algorithm mismatch: the key is for %s, the token uses %s", k.Algorithm, header.Algorithm)
	case k.Use != "" && k.Use != "sig":
		return fmt.Sprintf("use %q, not sig", k.Use)
	}
	return ""
}

// maxJWKSCacheEntries bounds the cache of parsed JWKS documents. A caller
// passes a few documents, so the bound only guards memory against a flood
// of distinct ones. Reaching it empties the cache.
const maxJWKSCacheEntries = 256

var (
	jwksCacheMu sync.Mutex
	jwksCache   = map[[32]byte][]jose.JSONWebKey{}
)

// cachedJWKS returns the public keys of a JWKS item, parsing each distinct
// document once, because parsing the keys and their x5c certificates costs
// more than a signature check.
func cachedJWKS(it *collateral.Item) []jose.JSONWebKey {
	sum := sha256.Sum256(it.Raw)
	jwksCacheMu.Lock()
	keys, ok := jwksCache[sum]
	jwksCacheMu.Unlock()
	if ok {
		return keys
	}
	keys = parseJWKS(it.Raw)
	jwksCacheMu.Lock()
	defer jwksCacheMu.Unlock()
	if len(jwksCache) >= maxJWKSCacheEntries {
		jwksCache = map[[32]byte][]jose.JSONWebKey{}
	}
	jwksCache[sum] = keys
	return keys
}

// parseJWKS decodes a JWK Set or a single JWK and returns its public keys
// that may verify signatures. go-jose checks that a key's x5c leaf holds
// the same public key.
func parseJWKS(raw []byte) []jose.JSONWebKey {
	var set jose.JSONWebKeySet
	var members struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 {
		var single jose.JSONWebKey
		if err := json.Unmarshal(raw, &single); err != nil {
			return nil
		}
		set.Keys = []jose.JSONWebKey{single}
		members.Keys = make([]map[string]json.RawMessage, 1)
		if err := json.Unmarshal(raw, &members.Keys[0]); err != nil {
			return nil
		}
	} else if err := json.Unmarshal(raw, &members); err != nil || len(members.Keys) != len(set.Keys) {
		return nil
	}
	var out []jose.JSONWebKey
	for i, k := range set.Keys {
		pub := k.Public()
		if pub.Valid() && allowsVerify(members.Keys[i]) {
			out = append(out, pub)
		}
	}
	return out
}

// allowsVerify reports whether a JWK's members permit signature
// verification. go-jose does not decode key_ops (RFC 7517, section 4.3),
// so a key whose key_ops is present but does not list "verify", or is not
// a list of strings, is left out here.
func allowsVerify(member map[string]json.RawMessage) bool {
	raw, ok := member["key_ops"]
	if !ok {
		return true
	}
	var ops []string
	if err := json.Unmarshal(raw, &ops); err != nil {
		return false
	}
	return slices.Contains(ops, "verify")
}

// minRSABits is the smallest RSA modulus that RFC 7518 (sections 3.3 and
// 3.5) allows for the RS* and PS* algorithms.
const minRSABits = 2048

// checkSigningKey checks that key fits the JWS algorithm alg. RS* and PS*
// need an RSA key of at least minRSABits. Every issuer allows only those,
// so any other algorithm is rejected here until a check for it is added.
func checkSigningKey(key any, alg string) error {
	if !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
		return fmt.Errorf("no key check exists for the algorithm %s", alg)
	}
	rsaKey, ok := key.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("the key is an %s key, but %s needs an RSA key", keyType(key), alg)
	}
	if bits := rsaKey.N.BitLen(); bits < minRSABits {
		return fmt.Errorf("the key is a %d-bit RSA key, but %s needs one of at least %d bits", bits, alg, minRSABits)
	}
	return nil
}

// keyType names the type of a public key for messages.
func keyType(key any) string {
	switch key.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("unsupported (%T)", key)
}

// keyAnchor describes a JWKS key as a caller-key trust anchor.
func keyAnchor(k signingKey) attest.TrustAnchorRef {
	ref := attest.TrustAnchorRef{Kind: attest.AnchorCallerKey, Name: k.Source}
	if k.JWK.KeyID != "" {
		ref.Name += " (kid " + k.JWK.KeyID + ")"
	}
	if der, err := x509.MarshalPKIXPublicKey(k.JWK.Key); err == nil {
		sum := sha256.Sum256(der)
		ref.SHA256 = sum[:]
	}
	return ref
}

// chains caches the x5c chains that verified, because a service signs
// every token with the same few keys.
var chains attest.ChainCache

// verifyChain verifies a certificate chain, leaf first, to one of roots at
// the verification time with attest.VerifyChain. Certificates after the
// leaf are only candidates for intermediates: a root among them counts only
// if the caller supplied it.
func verifyChain(certs []*x509.Certificate, roots []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, fmt.Errorf("no x5c certificate chain")
	}
	if err := checkSigningCertificate(certs[0]); err != nil {
		return nil, err
	}
	var ders [][]byte
	for _, c := range append(append([]*x509.Certificate{}, certs...), roots...) {
		ders = append(ders, c.Raw)
	}
	key := attest.ChainKey(ders...)
	if chain, ok := chains.Lookup(key, at); ok {
		return chain, nil
	}

	chain, err := attest.VerifyChain(certs[0], certs[1:], roots, at)
	if err != nil {
		return nil, err
	}
	chains.Store(key, chain)
	return chain, nil
}

// checkSigningCertificate rejects a token signing certificate that is a CA
// or whose key usage leaves out digitalSignature (RFC 5280, section
// 4.2.1.3). x509.Certificate.Verify checks neither for the leaf. A leaf
// without a key usage extension, as Google's Confidential Space leaves
// are, passes.
func checkSigningCertificate(leaf *x509.Certificate) error {
	if leaf.IsCA {
		return attest.Errorf(attest.ErrChain, "x5c", "the token signing certificate %q is a CA certificate, whose key signs certificates, not tokens", leaf.Subject).
			WithFix("pass the token as the attestation service issued it, with its signing certificate first in x5c")
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return attest.Errorf(attest.ErrChain, "x5c", "the key usage of the token signing certificate %q leaves out digitalSignature, so its key may not sign tokens", leaf.Subject).
			WithFix("pass the token as the attestation service issued it, with its signing certificate first in x5c")
	}
	return nil
}

// chainInfo summarises a verified chain for Claims.Chain.
func chainInfo(chain []*x509.Certificate) []attest.CertInfo {
	out := make([]attest.CertInfo, len(chain))
	for i, c := range chain {
		role := "intermediate"
		switch i {
		case 0:
			role = "token signing certificate"
		case len(chain) - 1:
			role = "root"
		}
		out[i] = attest.NewCertInfo(role, c)
	}
	return out
}

// algNames lists the algorithms for messages.
func algNames(algs []jose.SignatureAlgorithm) string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}
