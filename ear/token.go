package ear

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// DefaultLifetime is the token lifetime when Signer.Lifetime is zero. It is
// short because a token is a bearer credential for secrets.
const DefaultLifetime = 5 * time.Minute

// Leeway is the clock skew tolerated when checking iat and exp.
const Leeway = 30 * time.Second

// Signer issues EAR tokens signed with ES256.
type Signer struct {
	key    *ecdsa.PrivateKey
	kid    string
	signer jose.Signer
	// Lifetime is exp minus iat; zero means DefaultLifetime.
	Lifetime time.Duration
	// Issuer is the iss claim.
	Issuer string
	// VerifierID is the ear.verifier-id claim.
	VerifierID VerifierID
	// Issued, when set, remembers each token signed, for a Verifier that
	// shares it.
	Issued *Issued
}

// NewSigner returns a Signer for a P-256 key. The JWS header carries typ
// JWT, the key ID (the RFC 7638 thumbprint) and the public key as jwk, as
// Trustee's tokens do. Verifiers must still take the key from the JWKS.
func NewSigner(key *ecdsa.PrivateKey) (*Signer, error) {
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	kid := hexEncode(thumb)
	pub.KeyID = kid
	// The jwk header is the public key as go-jose's EmbedJWK writes it,
	// encoded once here, because EmbedJWK encodes the key three times per
	// token.
	jwk, err := jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.ES256)}.MarshalJSON()
	if err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid).
		WithHeader(jose.HeaderKey("jwk"), json.RawMessage(jwk))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(jose.ES256)}}, opts)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, kid: kid, signer: signer,
		VerifierID: VerifierID{Developer: "https://github.com/cloister-dev/cloister", Build: "cloister"}}, nil
}

// KeyID returns the kid of the signing key.
func (s *Signer) KeyID() string { return s.kid }

// JWKS returns the public signing key as a JSON Web Key Set.
func (s *Signer) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: string(jose.ES256), Use: "sig"}}}
}

// Sign fills in profile, iat, exp, iss, jti and the verifier ID, and
// returns the compact JWS. It rejects a result, and leaves it unchanged,
// when Verify would reject the token for its submods: none, a null
// appraisal, or an ear.status other than none, affirming, warning or
// contraindicated.
func (s *Signer) Sign(r *Result, now time.Time) (string, error) {
	if err := checkSubmods(r.Submods, "appraise the evidence again, because only an appraisal sets a valid status"); err != nil {
		return "", fmt.Errorf("sign EAR token: result %w", err)
	}
	return s.sign(r, now)
}

// sign is Sign without the check of the submods.
func (s *Signer) sign(r *Result, now time.Time) (string, error) {
	lifetime := s.Lifetime
	if lifetime <= 0 {
		lifetime = DefaultLifetime
	}
	r.Profile = Profile
	r.IssuedAt = now.Unix()
	r.Expiry = now.Add(lifetime).Unix()
	r.Issuer = s.Issuer
	r.VerifierID = s.VerifierID
	if r.ID == "" {
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return "", err
		}
		r.ID = hexEncode(id)
	}
	// encoding/json marshals the large annotated evidence faster than the
	// go-jose builder's own encoder; the signature is the same JWS.
	payload, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", err
	}
	if s.Issued != nil {
		s.Issued.remember(token, payload, s.kid, r, now)
	}
	return token, nil
}

// Verifier checks EAR tokens against a key set.
type Verifier struct {
	Keys jose.JSONWebKeySet
	// Issuer, when set, must equal the iss claim.
	Issuer string
	// Issued, when set, holds the tokens that a Signer with a key in Keys
	// issued. Such a token skips the JWS parsing and the signature check,
	// but its claims are still checked.
	Issued *Issued
}

// Verified is a token that passed Verify: its typed claims and the whole
// claim set as JSON values (numbers as json.Number), for policies that read
// any claim. The annotated evidence maps in Result are the ones in Claims.
type Verified struct {
	Result *Result
	Claims map[string]any
}

// Verify checks the ES256 signature with the key named by the token's kid
// (the embedded jwk is ignored), the eat_profile, the verifier ID and the
// appraisals (see checkResult), and that now lies within iat and
// exp up to Leeway. A token found in v.Issued, signed by a key
// still in v.Keys, has its claims checked without the signature check.
func (v *Verifier) Verify(token string, now time.Time) (*Verified, error) {
	if t, ok := v.issued(token); ok {
		if t.frame != nil {
			return v.checkIssuedClaims(t.payload, t.frame, now)
		}
		return v.checkClaims(t.payload, now)
	}
	payload, err := v.verifySignature(token)
	if err != nil {
		return nil, err
	}
	return v.checkClaims(payload, now)
}

// VerifyText checks token as Verify does. It returns the typed claims
// without annotated evidence, and the claim set as signed: valid JSON,
// shared with v's cache, which the caller must not change.
//
// For a token in v.Issued nothing is decoded. A caller that reads a few
// claims from the text, as policy.Engine.AllowJSON does, then skips
// decoding the annotated evidence, the bulk of a token.
func (v *Verifier) VerifyText(token string, now time.Time) (*Result, []byte, error) {
	t, ok := v.issued(token)
	if ok && t.frame != nil {
		res, err := t.frame.withEvidence(nil)
		if err != nil {
			return nil, nil, err
		}
		if err := v.checkFrame(res, now); err != nil {
			return nil, nil, err
		}
		return res, t.payload, nil
	}

	payload := t.payload
	if !ok {
		var err error
		if payload, err = v.verifySignature(token); err != nil {
			return nil, nil, err
		}
	}
	verified, err := v.checkClaims(payload, now)
	if err != nil {
		return nil, nil, err
	}
	res, err := verified.Result.withEvidence(nil)
	if err != nil {
		return nil, nil, err
	}
	return res, payload, nil
}

// issued returns the remembered token that is exactly token, when it was
// signed by a key still in v.Keys that checkVerificationKey accepts.
func (v *Verifier) issued(token string) (issuedToken, bool) {
	if v.Issued == nil {
		return issuedToken{}, false
	}
	t, ok := v.Issued.lookup(token)
	if !ok {
		return issuedToken{}, false
	}
	// A key that verifySignature would not use sends the token there, to
	// be rejected with the reason.
	keys := v.Keys.Key(t.kid)
	if len(keys) == 0 || checkVerificationKey(keys[0]) != nil {
		return issuedToken{}, false
	}
	return t, true
}

// ErrUnknownKey is wrapped by the error for a token whose kid names no key
// of the Verifier. Services that share a store and verify each other's
// tokens must all sign with one key.
var ErrUnknownKey = errors.New("EAR token signed by unknown key")

// keyIDs lists the kids of v.Keys for error messages.
func (v *Verifier) keyIDs() string {
	ids := make([]string, len(v.Keys.Keys))
	for i, k := range v.Keys.Keys {
		ids[i] = k.KeyID
	}
	return "[" + strings.Join(ids, ", ") + "]"
}

// verifySignature parses token and checks its signature, and returns the
// payload.
func (v *Verifier) verifySignature(token string) ([]byte, error) {
	// A JWT is always in compact serialization (RFC 7519 section 1).
	// ParseSignedCompact also skips ParseSigned's character-by-character
	// whitespace scan of the whole token, whose annotated evidence makes
	// it several kilobytes long; a token with whitespace fails to decode.
	tok, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("invalid EAR token: %w", err)
	}
	if len(tok.Signatures) != 1 {
		return nil, errors.New("invalid EAR token: expected one signature")
	}
	kid := tok.Signatures[0].Header.KeyID
	keys := v.Keys.Key(kid)
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: kid %q, trusted kids %s", ErrUnknownKey, kid, v.keyIDs())
	}
	if err := checkVerificationKey(keys[0]); err != nil {
		return nil, err
	}
	// One signature check, then encoding/json for the payload, which is
	// faster than go-jose's decoder for the large annotated evidence.
	payload, err := tok.Verify(keys[0].Key)
	if err != nil {
		return nil, fmt.Errorf("EAR token signature invalid: %w", err)
	}
	return payload, nil
}

// checkVerificationKey requires key to be a P-256 public key whose JWK
// alg and use, when set, allow ES256 signatures, because a key set from
// elsewhere may name a key meant for another purpose.
func checkVerificationKey(key jose.JSONWebKey) error {
	if key.Algorithm != "" && key.Algorithm != string(jose.ES256) {
		return fmt.Errorf("EAR token key %q has alg %q, but EAR tokens are signed with %s; publish the signing key with alg %s", key.KeyID, key.Algorithm, jose.ES256, jose.ES256)
	}
	if key.Use != "" && key.Use != "sig" {
		return fmt.Errorf("EAR token key %q has use %q, not sig, so it must not verify signatures", key.KeyID, key.Use)
	}
	pub, ok := key.Key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("EAR token key %q is a %T, not a P-256 public key", key.KeyID, key.Key)
	}
	return nil
}

// checkClaims decodes the payload of a token whose signature is valid and
// checks its claims.
func (v *Verifier) checkClaims(payload []byte, now time.Time) (*Verified, error) {
	// Numbers stay as written (json.Number), so that an integer claim
	// reaches a policy exactly and in its own notation.
	all, err := jsonvalue.DecodeObject(payload)
	if err != nil {
		return nil, fmt.Errorf("EAR token claims: %w", err)
	}
	std, err := registeredClaims(all)
	if err != nil {
		return nil, fmt.Errorf("EAR token registered claims: %w", err)
	}
	res, err := decodeResult(payload, all)
	if err != nil {
		return nil, fmt.Errorf("EAR token claims: %w", err)
	}
	if res.Profile != Profile {
		return nil, fmt.Errorf("EAR token eat_profile is %q, expected %q", res.Profile, Profile)
	}
	if err := checkResult(res); err != nil {
		return nil, err
	}
	if std.Expiry == nil || std.IssuedAt == nil {
		return nil, errors.New("EAR token lacks iat or exp")
	}
	if err := v.checkRegistered(std, now); err != nil {
		return nil, err
	}
	return &Verified{Result: res, Claims: all}, nil
}

// checkRegistered checks the registered claims std, which carry iat and
// exp: exp must be after iat, iss must equal v.Issuer when that is set, and
// now must lie within iat and exp up to Leeway.
func (v *Verifier) checkRegistered(std jwt.Claims, now time.Time) error {
	// Leeway alone would let such a token pass for a minute.
	if !std.Expiry.Time().After(std.IssuedAt.Time()) {
		return fmt.Errorf("EAR token exp %d is not after its iat %d", *std.Expiry, *std.IssuedAt)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: v.Issuer, Time: now}, Leeway); err != nil {
		return fmt.Errorf("EAR token rejected: %w (exp %s)", err, std.Expiry.Time().UTC().Format(time.RFC3339))
	}
	return nil
}

// checkIssuedClaims checks the claims of a token this service issued,
// whose claim set without annotated evidence is frame. Only the claim map
// is decoded from the payload; the checks are those of checkClaims.
func (v *Verifier) checkIssuedClaims(payload []byte, frame *Result, now time.Time) (*Verified, error) {
	all, err := jsonvalue.DecodeObject(payload)
	if err != nil {
		return nil, fmt.Errorf("EAR token claims: %w", err)
	}
	res, err := frame.withEvidence(all)
	if err != nil {
		return nil, fmt.Errorf("EAR token claims: %w", err)
	}
	if err := v.checkFrame(res, now); err != nil {
		return nil, err
	}
	return &Verified{Result: res, Claims: all}, nil
}

// checkFrame checks the claims of a token this service issued, from its
// typed claim set res, with the rules of checkClaims.
func (v *Verifier) checkFrame(res *Result, now time.Time) error {
	if res.Profile != Profile {
		return fmt.Errorf("EAR token eat_profile is %q, expected %q", res.Profile, Profile)
	}
	if err := checkResult(res); err != nil {
		return err
	}
	// A Result always carries iat and exp, and no nbf, sub or aud.
	std := jwt.Claims{Issuer: res.Issuer, ID: res.ID,
		IssuedAt: jwt.NewNumericDate(time.Unix(res.IssuedAt, 0)), Expiry: jwt.NewNumericDate(time.Unix(res.Expiry, 0))}
	return v.checkRegistered(std, now)
}

// checkResult checks the claims that an EAR needs beside eat_profile and
// iat. ear.verifier-id must carry its developer and build. submods must
// contain at least one appraisal, and each appraisal must be a JSON object
// whose ear.status is one of the four AR4SI tiers. A relying party that compares a status with
// StatusContraindicated would otherwise accept a missing or misspelt one,
// and one that loops over submods would accept a token that appraised
// nothing.
func checkResult(res *Result) error {
	if res.VerifierID.Developer == "" || res.VerifierID.Build == "" {
		return fmt.Errorf("EAR token ear.verifier-id is %+v: both developer and build must be set, because they identify the verifier that appraised the evidence", res.VerifierID)
	}
	if err := checkSubmods(res.Submods, "attest again to obtain a token from the verifier"); err != nil {
		return fmt.Errorf("EAR token %w", err)
	}
	return nil
}

// checkSubmods checks that submods contains at least one appraisal and that
// each is not nil and has one of the four AR4SI statuses. fix ends the
// error message with what to do next.
func checkSubmods(submods map[string]*Appraisal, fix string) error {
	if len(submods) == 0 {
		return fmt.Errorf("submods is missing or empty: it must contain at least one appraisal, keyed by submodule name, because a token without one appraised no evidence; %s", fix)
	}
	for _, name := range slices.Sorted(maps.Keys(submods)) {
		a := submods[name]
		if a == nil {
			return fmt.Errorf("submods.%s is null: each appraisal must be a JSON object with ear.status; %s", name, fix)
		}
		switch a.Status {
		case StatusNone, StatusAffirming, StatusWarning, StatusContraindicated:
		case "":
			return fmt.Errorf("submods.%s is missing ear.status, which must be one of none, affirming, warning or contraindicated; %s", name, fix)
		default:
			return fmt.Errorf("submods.%s ear.status is %q, not one of none, affirming, warning or contraindicated; %s", name, a.Status, fix)
		}
	}
	return nil
}

// resultFrame is a Result whose appraisals skip the annotated evidence.
// The field names of both frame types shadow the embedded ones.
type resultFrame struct {
	Result
	Submods map[string]*appraisalFrame `json:"submods"`
}

type appraisalFrame struct {
	Appraisal
	AnnotatedEvidence json.RawMessage `json:"ear.veraison.annotated-evidence,omitempty"`
}

// decodeResult decodes payload as a Result. The annotated evidence, the
// bulk of a token, is taken from all, the payload already decoded as a
// map, instead of being decoded a second time, so the two share it.
func decodeResult(payload []byte, all map[string]any) (*Result, error) {
	var frame resultFrame
	if err := json.Unmarshal(payload, &frame); err != nil {
		return nil, err
	}
	res := frame.Result
	res.Submods = nil
	if frame.Submods != nil {
		res.Submods = make(map[string]*Appraisal, len(frame.Submods))
	}
	for name, f := range frame.Submods {
		if f == nil {
			res.Submods[name] = nil
			continue
		}
		a := f.Appraisal
		evidence, err := annotatedEvidence(all, name)
		if err != nil {
			return nil, err
		}
		a.AnnotatedEvidence = evidence
		res.Submods[name] = &a
	}
	return &res, nil
}

// annotatedEvidence returns the annotated evidence of submodule name in
// the decoded claim map, nil when it is absent or null.
func annotatedEvidence(all map[string]any, name string) (map[string]any, error) {
	submods, _ := all["submods"].(map[string]any)
	appraisal, _ := submods[name].(map[string]any)
	v, ok := appraisal["ear.veraison.annotated-evidence"]
	if !ok || v == nil {
		return nil, nil
	}
	evidence, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("submods.%s: ear.veraison.annotated-evidence is a %T, not a JSON object", name, v)
	}
	return evidence, nil
}

// registeredClaimNames are the JWT claims of RFC 7519 section 4.1.
var registeredClaimNames = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

// registeredClaims decodes the registered claims of a decoded claim set.
// It re-encodes only those few claims, because decoding the whole payload
// a third time would again parse the large annotated evidence.
func registeredClaims(all map[string]any) (jwt.Claims, error) {
	subset := map[string]any{}
	for _, name := range registeredClaimNames {
		if v, ok := all[name]; ok {
			subset[name] = v
		}
	}
	raw, err := json.Marshal(subset)
	if err != nil {
		return jwt.Claims{}, err
	}
	var std jwt.Claims
	if err := json.Unmarshal(raw, &std); err != nil {
		return jwt.Claims{}, err
	}
	return std, nil
}

// MarshalJWKS returns the key set as JSON.
func MarshalJWKS(set jose.JSONWebKeySet) ([]byte, error) { return json.Marshal(set) }

func hexEncode(b []byte) string { return hex.EncodeToString(b) }
