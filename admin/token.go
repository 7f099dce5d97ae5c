package admin

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// Admin tokens are the JWTs that Trustee's admin clients send as
// "Authorization: Bearer <token>". kbs-client up to v0.20.0 signs a token
// valid for two hours for each call with the Ed25519 key of
// --auth-private-key; v0.19.0 and v0.20.0 send the header {"typ": "JWT",
// "alg": "EdDSA"} and the claims {"iat", "exp": iat + 7200}. kbs-client
// v0.21.0 reads a ready-made token from --admin-token-file instead, and
// the KBS of v0.21.0 requires a "role" claim, which its regular-expression
// ACL matches against the request URI. Cloister accepts both: without
// TokenRoles any valid token from a trusted key is an admin, and with
// TokenRoles the role decides.
//
// A token is valid when its alg is EdDSA, its signature verifies with one of
// Config.TokenKeys, exp is present and in the future, and iat and nbf, when
// present, are not later than now plus tokenClockSkew. All three must be
// integer seconds. exp may lie at most Config.TokenMaxLifetime after iat,
// or after now when the token has no iat, so that a leaked token does not
// stay valid for years. Like Trustee, Cloister checks iss and aud only
// when they are configured (Config.TokenIssuer, Config.TokenAudience).

// tokenClockSkew is how far iat and nbf may lie in the future, for clients
// whose clock runs ahead of the server's.
const tokenClockSkew = 60 * time.Second

// DefaultTokenMaxLifetime is the maximum lifetime of an admin token when
// Config.TokenMaxLifetime is zero. The two-hour tokens that kbs-client
// v0.19.0 and v0.20.0 sign fit within it.
const DefaultTokenMaxLifetime = 24 * time.Hour

// maxNumericDate is 9999-12-31T23:59:59Z. Larger times would wrap in
// time.Unix and could pass the checks of iat and nbf as times in the past.
const maxNumericDate = 253402300799

// maxTokenSubject limits the sub claim, which the audit log records.
const maxTokenSubject = 256

// TokenRole grants the admin tokens whose role claim is Role access to the
// request URIs (path and query, as http.Request.URL.RequestURI encodes
// them) that Endpoints matches. The method does not count, as in Trustee's
// access rules, so a role that may read a path may also write it.
type TokenRole struct {
	Role      string
	Endpoints *regexp.Regexp
}

// ParseTokenRole parses a rule written "ROLE=REGEXP". The expression must
// start with ^ and end with $, so that it cannot match part of a URI by
// accident. Trustee's ACL also requires that it start with ^/kbs, but
// Cloister lets a rule cover the /admin/v0 API as well.
func ParseTokenRole(rule string) (TokenRole, error) {
	role, expr, ok := strings.Cut(rule, "=")
	if !ok || role == "" || expr == "" {
		return TokenRole{}, fmt.Errorf("admin token role %q is not ROLE=REGEXP, for example admin=^/kbs/v0/.+$", rule)
	}
	if !strings.HasPrefix(expr, "^") || !strings.HasSuffix(expr, "$") || strings.HasSuffix(expr, `\$`) {
		return TokenRole{}, fmt.Errorf("admin token role %s: expression %q must start with ^ and end with $ so that it matches whole request URIs", role, expr)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return TokenRole{}, fmt.Errorf("admin token role %s: %w", role, err)
	}
	return TokenRole{Role: role, Endpoints: re}, nil
}

// ParseTokenKeys returns the Ed25519 public keys of the PEM "PUBLIC KEY"
// blocks (PKIX, as "openssl pkey -pubout" writes them) in data. Any other
// block, any other key type and data without a key are errors, so that a
// key file that would authenticate no token fails at startup.
func ParseTokenKeys(data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block %d is a %q, want PUBLIC KEY; export the public key with: openssl pkey -in admin.pem -pubout", n, block.Type)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		key, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("PEM block %d is a %T key, want Ed25519, because admin tokens are signed with EdDSA; generate a key with: openssl genpkey -algorithm ed25519", n, pub)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM PUBLIC KEY block; pass a file with the Ed25519 public keys that sign admin tokens")
	}
	return keys, nil
}

// checkTokenConfig rejects role rules without token keys or without an
// expression.
func checkTokenConfig(cfg Config) error {
	if cfg.TokenMaxLifetime < 0 {
		return fmt.Errorf("admin: token maximum lifetime %s is negative; set a positive duration, or zero for the default %s", cfg.TokenMaxLifetime, DefaultTokenMaxLifetime)
	}
	if len(cfg.TokenRoles) > 0 && len(cfg.TokenKeys) == 0 {
		return errors.New("admin: token roles are set but no token keys; set TokenKeys to the keys that sign admin tokens")
	}
	for _, k := range cfg.TokenKeys {
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("admin: token key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
	}
	for _, rule := range cfg.TokenRoles {
		if rule.Role == "" || rule.Endpoints == nil {
			return fmt.Errorf("admin: token role %q has no role name or no endpoint expression", rule.Role)
		}
	}
	return nil
}

// tokenMaxLifetime returns cfg.TokenMaxLifetime, or the default when it is
// zero.
func (cfg Config) tokenMaxLifetime() time.Duration {
	if cfg.TokenMaxLifetime == 0 {
		return DefaultTokenMaxLifetime
	}
	return cfg.TokenMaxLifetime
}

// adminToken is the verified content of an admin token.
type adminToken struct {
	key       ed25519.PublicKey
	subject   string
	role      string
	hasRole   bool
	issuer    string
	audiences []string
}

// requester names the token's key, by the first 16 hex digits of the
// SHA-256 of the raw public key, and its subject when it has one.
func (t *adminToken) requester() string {
	sum := sha256.Sum256(t.key)
	name := "ed25519:" + hex.EncodeToString(sum[:8])
	if t.subject != "" {
		name += " sub " + strconv.Quote(t.subject)
	}
	return name
}

// looksLikeJWT reports whether a bearer credential has the three segments
// of a compact JWS, so that a wrong admin key is reported as a wrong key
// rather than as a malformed token.
func looksLikeJWT(credential string) bool {
	return strings.Count(credential, ".") == 2
}

// authenticateToken verifies an admin token and applies the role rules.
func (h *Handler) authenticateToken(r *http.Request, token string) (requester, reason string) {
	t, err := verifyAdminToken(token, h.cfg.TokenKeys, h.cfg.Now(), h.cfg.tokenMaxLifetime())
	if err != nil {
		return "", "admin token rejected: " + err.Error()
	}
	err = checkIssuerAudience(h.cfg, t)
	if err == nil {
		err = authorizeRole(h.cfg.TokenRoles, t, r.URL.RequestURI())
	}
	if err != nil {
		reason = "admin token " + t.requester() + " rejected: " + err.Error()
		// The signature verified, so the record names a known signer,
		// and only holders of a trusted key can add such records.
		h.auditRejectedChange(r.WithContext(withRequester(r.Context(), t.requester())), http.StatusUnauthorized, reason)
		return "", reason
	}
	return t.requester(), ""
}

// checkIssuerAudience compares the token's iss and aud claims with the
// configured issuer and audience, when they are set.
func checkIssuerAudience(cfg Config, t *adminToken) error {
	if cfg.TokenIssuer != "" && t.issuer != cfg.TokenIssuer {
		return fmt.Errorf("iss %q is not the expected issuer %q", t.issuer, cfg.TokenIssuer)
	}
	if cfg.TokenAudience != "" && !slices.Contains(t.audiences, cfg.TokenAudience) {
		return fmt.Errorf("aud %q does not include the expected audience %q", t.audiences, cfg.TokenAudience)
	}
	return nil
}

// authorizeRole allows uri when no rules are set, or when a rule for the
// token's role matches it.
func authorizeRole(rules []TokenRole, t *adminToken, uri string) error {
	if len(rules) == 0 {
		return nil
	}
	if !t.hasRole {
		return errors.New("the token has no role claim, which the server's role rules require")
	}
	for _, rule := range rules {
		if rule.Role == t.role && rule.Endpoints.MatchString(uri) {
			return nil
		}
	}
	return fmt.Errorf("role %q is not allowed for %s", t.role, uri)
}

// verifyAdminToken verifies token, a compact JWS, with the first of keys
// whose signature check passes, and checks its claims at time now with the
// maximum lifetime maxLifetime.
func verifyAdminToken(token string, keys []ed25519.PublicKey, now time.Time, maxLifetime time.Duration) (*adminToken, error) {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("not a compact JWS signed with EdDSA: %w", err)
	}

	var (
		payload []byte
		key     ed25519.PublicKey
	)
	for _, k := range keys {
		if p, err := jws.Verify(k); err == nil {
			payload, key = p, k
			break
		}
	}
	if key == nil {
		return nil, errors.New("the signature does not verify with any trusted admin token key")
	}

	t, err := checkTokenClaims(payload, now, maxLifetime)
	if err != nil {
		return nil, err
	}
	t.key = key
	return t, nil
}

// checkTokenClaims decodes the claims of a verified token and checks exp,
// iat, nbf, the lifetime, sub and role.
func checkTokenClaims(payload []byte, now time.Time, maxLifetime time.Duration) (*adminToken, error) {
	claims, err := jsonvalue.DecodeObject(payload)
	if err != nil {
		return nil, fmt.Errorf("the claims are not one JSON object: %w", err)
	}

	exp, ok, err := numericDate(claims, "exp")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("the exp claim is missing; sign tokens with an expiry time")
	}
	if !now.Before(exp) {
		return nil, fmt.Errorf("the token expired at %s (exp %d); sign a new one", exp.UTC().Format(time.RFC3339), exp.Unix())
	}
	latest := now.Add(tokenClockSkew)
	var (
		iat    time.Time
		hasIAT bool
	)
	for _, name := range []string{"iat", "nbf"} {
		t, ok, err := numericDate(claims, name)
		if err != nil {
			return nil, err
		}
		if ok && t.After(latest) {
			return nil, fmt.Errorf("the %s claim %s is more than %s in the future; check the client's clock", name, t.UTC().Format(time.RFC3339), tokenClockSkew)
		}
		if name == "iat" {
			iat, hasIAT = t, ok
		}
	}
	if err := checkTokenLifetime(exp, iat, hasIAT, now, maxLifetime); err != nil {
		return nil, err
	}

	t := &adminToken{}
	if t.subject, _, err = stringClaim(claims, "sub"); err != nil {
		return nil, err
	}
	if len(t.subject) > maxTokenSubject {
		return nil, fmt.Errorf("the sub claim is %d bytes, longer than %d", len(t.subject), maxTokenSubject)
	}
	if t.role, t.hasRole, err = stringClaim(claims, "role"); err != nil {
		return nil, err
	}
	if t.issuer, _, err = stringClaim(claims, "iss"); err != nil {
		return nil, err
	}
	if t.audiences, err = audienceClaim(claims); err != nil {
		return nil, err
	}
	return t, nil
}

// checkTokenLifetime rejects a token whose exp lies more than maxLifetime
// after its iat, or, when the token has no iat, more than maxLifetime after
// now.
func checkTokenLifetime(exp, iat time.Time, hasIAT bool, now time.Time, maxLifetime time.Duration) error {
	const fix = "issue a shorter-lived token or raise --admin-token-max-lifetime"
	if hasIAT {
		lifetime := exp.Sub(iat)
		if lifetime > maxLifetime {
			return fmt.Errorf("exp %s is %s after iat %s; the server accepts at most %s; %s",
				exp.UTC().Format(time.RFC3339), formatLifetime(lifetime), iat.UTC().Format(time.RFC3339), maxLifetime, fix)
		}
		return nil
	}

	// exp is whole seconds, so with now truncated to the second the
	// comparison is exact for a maximum of whole seconds, and the message
	// shows no fraction.
	remaining := exp.Sub(now.Truncate(time.Second))
	if remaining > maxLifetime {
		return fmt.Errorf("exp %s is %s after the current time and the token has no iat claim; the server accepts at most %s; %s",
			exp.UTC().Format(time.RFC3339), formatLifetime(remaining), maxLifetime, fix)
	}
	return nil
}

// formatLifetime formats d for an error message. time.Time.Sub saturates
// at the largest Duration, about 292 years, so that value means at least
// that long.
func formatLifetime(d time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return "more than 292 years"
	}
	return d.String()
}

// audienceClaim returns the aud claim, which RFC 7519 allows as one string
// or an array of strings.
func audienceClaim(claims map[string]any) ([]string, error) {
	switch v := claims["aud"].(type) {
	case nil:
		if _, present := claims["aud"]; present {
			return nil, errors.New("the aud claim is null, not a string or an array of strings")
		}
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, len(v))
		for i, item := range v {
			s, ok := item.(string)
			if !ok {
				return nil, fmt.Errorf("the aud claim has %v, not a string", item)
			}
			out[i] = s
		}
		return out, nil
	default:
		return nil, fmt.Errorf("the aud claim is %v, not a string or an array of strings", v)
	}
}

// numericDate returns the claim name as a time, when present. RFC 7519
// allows fractional seconds, but Trustee's clients write integers and a
// fraction here more likely means a broken client, so only non-negative
// integers are accepted.
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, isNumber := v.(json.Number)
	if !isNumber {
		return time.Time{}, false, fmt.Errorf("the %s claim is %v, not integer seconds since 1970", name, v)
	}
	secs, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || secs < 0 || secs > maxNumericDate {
		return time.Time{}, false, fmt.Errorf("the %s claim %s is not an integer number of seconds from 0 to %d (1970 to 9999); sign the token with integer times", name, n, int64(maxNumericDate))
	}
	return time.Unix(secs, 0), true, nil
}

// stringClaim returns the claim name when present; any type other than a
// string is an error.
func stringClaim(claims map[string]any, name string) (string, bool, error) {
	v, ok := claims[name]
	if !ok {
		return "", false, nil
	}
	s, isString := v.(string)
	if !isString {
		return "", false, fmt.Errorf("the %s claim is %v, not a string", name, v)
	}
	return s, true, nil
}
