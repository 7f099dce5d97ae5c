package ear

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/cloister-dev/cloister/appraise"
)

func newTestSigner(t testing.TB) *Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	s.Issuer = "cloister-test"
	return s
}

func sampleResult() *Result {
	tv := TrustVectorFor(nil)
	return &Result{Nonce: "bm9uY2U=", Submods: map[string]*Appraisal{"cpu0": {
		Status: tv.Status(), TrustVector: &tv, PolicyID: "default-snp",
		AnnotatedEvidence: map[string]any{"runtime_data_claims": map[string]any{"tee-pubkey": map[string]any{"kty": "EC"}}},
	}}}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	s := newTestSigner(t)
	now := time.Now()
	tok, err := s.Sign(sampleResult(), now)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Keys: s.JWKS(), Issuer: "cloister-test"}
	got, err := v.Verify(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Result.Submods["cpu0"].Status != StatusAffirming {
		t.Errorf("status = %s, want affirming", got.Result.Submods["cpu0"].Status)
	}
	if got.Result.Expiry-got.Result.IssuedAt != int64(DefaultLifetime/time.Second) {
		t.Errorf("lifetime = %d s", got.Result.Expiry-got.Result.IssuedAt)
	}
	if got.Claims["eat_profile"] != Profile {
		t.Errorf("eat_profile = %v", got.Claims["eat_profile"])
	}
}

// The protected header is byte for byte the one go-jose writes with
// EmbedJWK, as Trustee's tokens carry it.
func TestHeaderMatchesEmbedJWK(t *testing.T) {
	s := newTestSigner(t)
	tok, err := s.Sign(sampleResult(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), s.KeyID())
	embedding, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256,
		Key: jose.JSONWebKey{Key: s.key, KeyID: s.KeyID(), Algorithm: string(jose.ES256)}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := embedding.Sign([]byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	gotHeader, _, _ := strings.Cut(tok, ".")
	wantHeader, _, _ := strings.Cut(want, ".")
	if gotHeader != wantHeader {
		t.Errorf("header = %s, go-jose's EmbedJWK writes %s", gotHeader, wantHeader)
	}
}

// A relying party verifies the token with go-jose alone, from the JWKS
// JSON the service publishes.
func TestVerifyWithGoJoseFromJWKS(t *testing.T) {
	s := newTestSigner(t)
	tok, _ := s.Sign(sampleResult(), time.Now())
	jwksJSON, err := MarshalJWKS(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwksJSON, &set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Headers[0]
	if h.ExtraHeaders["typ"] != "JWT" || h.JSONWebKey == nil || h.KeyID == "" {
		t.Errorf("header = %+v, want typ JWT, kid and jwk", h)
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS", h.KeyID)
	}
	var claims map[string]any
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		t.Fatal(err)
	}
	sub := claims["submods"].(map[string]any)["cpu0"].(map[string]any)
	if sub["ear.status"] != "affirming" {
		t.Errorf("ear.status = %v", sub["ear.status"])
	}
	if _, ok := sub["ear.trustworthiness-vector"].(map[string]any)["sourced-data"]; !ok {
		t.Error("trust vector lacks sourced-data")
	}
}

func TestVerifyRejects(t *testing.T) {
	s := newTestSigner(t)
	other := newTestSigner(t)
	now := time.Now()
	good, _ := s.Sign(sampleResult(), now)
	forged, _ := other.Sign(sampleResult(), now)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]

	v := &Verifier{Keys: s.JWKS()}
	cases := map[string]struct {
		token string
		at    time.Time
	}{
		"expired":       {good, now.Add(DefaultLifetime + Leeway + time.Second)},
		"not yet valid": {good, now.Add(-time.Hour)},
		"other key":     {forged, now},
		"tampered":      {tampered, now},
		"garbage":       {"a.b.c", now},
		"empty":         {"", now},
	}
	for name, c := range cases {
		if _, err := v.Verify(c.token, c.at); err == nil {
			t.Errorf("%s: Verify accepted the token", name)
		}
	}
}

// A token of another signer fails with ErrUnknownKey, and the error names
// its kid and the trusted ones, so that an operator can tell which
// service's key is missing.
func TestVerifyUnknownKeyNamesKids(t *testing.T) {
	s := newTestSigner(t)
	other := newTestSigner(t)
	now := time.Now()
	forged, err := other.Sign(sampleResult(), now)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Keys: s.JWKS()}
	_, _, err = v.VerifyText(forged, now)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("VerifyText = %v, want ErrUnknownKey", err)
	}
	for _, kid := range []string{other.KeyID(), s.KeyID()} {
		if !strings.Contains(err.Error(), kid) {
			t.Errorf("error %q does not name kid %s", err, kid)
		}
	}
}

func TestTrustVectorStatus(t *testing.T) {
	cases := []struct {
		rule string
		want Status
	}{
		{"", StatusAffirming},
		{"debug", StatusContraindicated},
		{"emulated", StatusContraindicated},
		{"tcb-status", StatusContraindicated},
		{"measurement", StatusContraindicated},
		{"a-custom-rule", StatusContraindicated},
	}
	for _, c := range cases {
		var reasons []appraise.Reason
		if c.rule != "" {
			reasons = []appraise.Reason{{Rule: c.rule}}
		}
		if got := TrustVectorFor(reasons).Status(); got != c.want {
			t.Errorf("rule %q: status %s, want %s", c.rule, got, c.want)
		}
	}
	if got := (TrustVector{}).Status(); got != StatusNone {
		t.Errorf("empty vector: status %s, want none", got)
	}
	if got := (TrustVector{Hardware: 2, Configuration: 32}).Status(); got != StatusWarning {
		t.Errorf("warning vector: status %s, want warning", got)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	k1, created, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("first load: created = false, want true")
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second load: created = true, want false")
	}
	if !k1.Equal(k2) {
		t.Error("second load returned another key")
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o644)
	if _, _, err := LoadOrCreateKey(dir); err == nil {
		t.Error("a world-readable key file was accepted")
	}
}

// Services that start at once on one data directory all get the one key
// that lands in the file, and none fails on a partly written file.
func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	dir := t.TempDir()
	const services = 8
	keys := make([]*ecdsa.PrivateKey, services)
	errs := make([]error, services)
	var wg sync.WaitGroup
	for i := range services {
		wg.Go(func() { keys[i], _, errs[i] = LoadOrCreateKey(dir) })
	}
	wg.Wait()

	for i := range services {
		if errs[i] != nil {
			t.Fatalf("service %d: %v", i, errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Errorf("service %d got another key than service 0", i)
		}
	}
}

// A relying party reads Trustee's EAR claim layout with these types.
func TestReadTrusteeClaimsExample(t *testing.T) {
	dir := os.Getenv("CLOISTER_KBS_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "protocols", "kbs-vectors")
	}
	data, err := os.ReadFile(filepath.Join(dir, "trustee_ear-token-claims-example.json"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("KBS vectors not found: %v", err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	cpu0 := r.Submods["cpu0"]
	if cpu0 == nil {
		t.Fatal("no cpu0 submodule")
	}
	if cpu0.Status != StatusContraindicated {
		t.Errorf("status = %s, want contraindicated", cpu0.Status)
	}
	if cpu0.TrustVector == nil || cpu0.TrustVector.Hardware != 97 || cpu0.TrustVector.Configuration != 36 {
		t.Errorf("trust vector = %+v", cpu0.TrustVector)
	}
	if got := cpu0.TrustVector.Status(); got != StatusContraindicated {
		t.Errorf("status derived from the vector = %s, want contraindicated", got)
	}
	if cpu0.AnnotatedEvidence["report_data"] == nil {
		t.Error("annotated evidence lacks report_data")
	}
	if r.Expiry <= r.IssuedAt {
		t.Errorf("exp %d not after iat %d", r.Expiry, r.IssuedAt)
	}
}

// signClaims signs an arbitrary claim set with s's key and kid, for
// claims that Sign never produces.
func signClaims(t *testing.T, s *Signer, claims map[string]any) *jose.JSONWebSignature {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), s.kid)
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := js.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

func TestVerifyRegisteredClaims(t *testing.T) {
	s := newTestSigner(t)
	now := time.Now()
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"eat_profile": Profile, "iss": "cloister-test", "jti": "01",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
			"ear.verifier-id": map[string]any{"developer": "https://example.com", "build": "test"},
			"submods":         map[string]any{"cpu0": map[string]any{"ear.status": "affirming"}}}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	compact := func(c map[string]any) string {
		tok, err := signClaims(t, s, c).CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	v := &Verifier{Keys: s.JWKS(), Issuer: "cloister-test"}

	got, err := v.Verify(compact(claims(nil)), now)
	if err != nil {
		t.Fatalf("valid token rejected: %v", err)
	}
	if got.Result.ID != "01" {
		t.Errorf("jti = %q, want 01", got.Result.ID)
	}

	rejects := map[string]string{
		"nbf in the future":  compact(claims(map[string]any{"nbf": now.Add(time.Hour).Unix()})),
		"exp not a number":   compact(claims(map[string]any{"exp": "tomorrow"})),
		"other issuer":       compact(claims(map[string]any{"iss": "someone-else"})),
		"no exp":             compact(claims(map[string]any{"exp": nil})),
		"exp before iat":     compact(claims(map[string]any{"iat": now.Add(20 * time.Second).Unix(), "exp": now.Add(10 * time.Second).Unix()})),
		"exp equal to iat":   compact(claims(map[string]any{"iat": now.Unix(), "exp": now.Unix()})),
		"JSON serialization": signClaims(t, s, claims(nil)).FullSerialize(),
		"whitespace inside": func() string {
			tok := compact(claims(nil))
			return tok[:10] + " " + tok[10:]
		}(),
	}
	for name, tok := range rejects {
		if _, err := v.Verify(tok, now); err == nil {
			t.Errorf("%s: Verify accepted the token", name)
		}
	}
}

func TestVerifyResultMatchesPayload(t *testing.T) {
	s := newTestSigner(t)
	now := time.Now()
	tok, err := s.Sign(sampleResult(), now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&Verifier{Keys: s.JWKS()}).Verify(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var want Result
	if err := json.Unmarshal(parsed.UnsafePayloadWithoutVerification(), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Result, &want) {
		t.Errorf("Result = %+v, want %+v", got.Result, &want)
	}
	if got.Result.Submods["cpu0"].AnnotatedEvidence == nil {
		t.Error("annotated evidence is missing")
	}
}

func TestVerifyRejectsNonObjectEvidence(t *testing.T) {
	s := newTestSigner(t)
	now := time.Now()
	claims := map[string]any{"eat_profile": Profile, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"submods": map[string]any{"cpu0": map[string]any{"ear.status": "affirming", "ear.veraison.annotated-evidence": "text"}}}
	tok, err := signClaims(t, s, claims).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Verifier{Keys: s.JWKS()}).Verify(tok, now); err == nil {
		t.Error("Verify accepted annotated evidence that is not an object")
	}
}

// An EAR without the verifier's identity, without an appraisal, with a
// null appraisal, or with an appraisal whose status is missing or not an
// AR4SI tier, is rejected by the full verification and by the path for
// remembered tokens.
func TestVerifyRejectsInvalidEARClaims(t *testing.T) {
	verifierID := map[string]any{"developer": "https://example.com", "build": "test"}
	appraisal := func(status any) map[string]any {
		a := map[string]any{"ear.trustworthiness-vector": map[string]any{"hardware": 2}}
		if status != nil {
			a["ear.status"] = status
		}
		return a
	}
	tests := []struct {
		name    string
		claims  map[string]any
		wantErr string
	}{
		{"no verifier-id", map[string]any{"submods": map[string]any{"cpu0": appraisal("affirming")}}, "ear.verifier-id"},
		{"verifier-id without build", map[string]any{"ear.verifier-id": map[string]any{"developer": "x"},
			"submods": map[string]any{"cpu0": appraisal("affirming")}}, "ear.verifier-id"},
		{"status missing", map[string]any{"ear.verifier-id": verifierID,
			"submods": map[string]any{"cpu0": appraisal(nil)}}, "submods.cpu0 is missing ear.status"},
		{"status unknown", map[string]any{"ear.verifier-id": verifierID,
			"submods": map[string]any{"cpu0": appraisal("affirming"), "gpu0": appraisal("trusted")}}, `submods.gpu0 ear.status is "trusted"`},
		{"status in capitals", map[string]any{"ear.verifier-id": verifierID,
			"submods": map[string]any{"cpu0": appraisal("AFFIRMING")}}, `ear.status is "AFFIRMING"`},
		{"submods missing", map[string]any{"ear.verifier-id": verifierID}, "submods is missing or empty"},
		{"submods null", map[string]any{"ear.verifier-id": verifierID, "submods": nil}, "submods is missing or empty"},
		{"submods empty", map[string]any{"ear.verifier-id": verifierID, "submods": map[string]any{}}, "submods is missing or empty"},
		{"appraisal null", map[string]any{"ear.verifier-id": verifierID,
			"submods": map[string]any{"cpu0": appraisal("affirming"), "gpu0": nil}}, "submods.gpu0 is null"},
	}
	s := newTestSigner(t)
	now := time.Now()
	v := &Verifier{Keys: s.JWKS()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := map[string]any{"eat_profile": Profile, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
			for k, val := range tt.claims {
				claims[k] = val
			}
			tok, err := signClaims(t, s, claims).CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(tok, now)
			if err == nil {
				t.Fatal("Verify accepted the token")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Verify error = %q, want it to contain %q", err, tt.wantErr)
			}
			if _, _, err := v.VerifyText(tok, now); err == nil {
				t.Error("VerifyText accepted the token")
			}
		})
	}

	remembered := []struct {
		name    string
		change  func(r *Result)
		wantErr string
	}{
		{"status trusted", func(r *Result) { r.Submods["cpu0"].Status = "trusted" }, `ear.status is "trusted"`},
		{"submods empty", func(r *Result) { r.Submods = map[string]*Appraisal{} }, "submods is missing or empty"},
		{"submods nil", func(r *Result) { r.Submods = nil }, "submods is missing or empty"},
		{"appraisal null", func(r *Result) { r.Submods["gpu0"] = nil }, "submods.gpu0 is null"},
	}
	for _, tt := range remembered {
		t.Run("remembered token "+tt.name, func(t *testing.T) {
			s := newTestSigner(t)
			s.Issued = &Issued{}
			r := sampleResult()
			tt.change(r)
			// Sign rejects these results, so sign skips its check to
			// make a remembered token that only Verify can reject.
			tok, err := s.sign(r, now)
			if err != nil {
				t.Fatal(err)
			}
			cached := &Verifier{Keys: s.JWKS(), Issued: s.Issued}
			_, err = cached.Verify(tok, now)
			if err == nil {
				t.Fatalf("Verify accepted a remembered token with %s", tt.name)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Verify error = %q, want it to contain %q", err, tt.wantErr)
			}
			if _, _, err := cached.VerifyText(tok, now); err == nil {
				t.Errorf("VerifyText accepted a remembered token with %s", tt.name)
			}
		})
	}
}

// A key set entry with the token's kid verifies only when it is a P-256
// public key whose alg and use, when set, are ES256 and sig.
func TestVerifyChecksKeyUse(t *testing.T) {
	s := newTestSigner(t)
	s.Issued = &Issued{}
	now := time.Now()
	tok, err := s.Sign(sampleResult(), now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := &s.key.PublicKey
	tests := []struct {
		name string
		key  jose.JSONWebKey
		want string // empty: accepted
	}{
		{"published key", s.JWKS().Keys[0], ""},
		{"no alg or use", jose.JSONWebKey{Key: pub, KeyID: s.kid}, ""},
		{"encryption key", jose.JSONWebKey{Key: pub, KeyID: s.kid, Use: "enc"}, `use "enc"`},
		{"other algorithm", jose.JSONWebKey{Key: pub, KeyID: s.kid, Algorithm: "ES384"}, `alg "ES384"`},
		{"private key", jose.JSONWebKey{Key: s.key, KeyID: s.kid}, "not a P-256 public key"},
		{"P-384 key", jose.JSONWebKey{Key: &other.PublicKey, KeyID: s.kid}, "not a P-256 public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{tt.key}}
			for _, v := range []*Verifier{{Keys: keys}, {Keys: keys, Issued: s.Issued}} {
				_, err := v.Verify(tok, now)
				if tt.want == "" {
					if err != nil {
						t.Errorf("Verify (cache %v) rejected the token: %v", v.Issued != nil, err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("Verify (cache %v) accepted the token", v.Issued != nil)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Verify (cache %v) error %q does not contain %q", v.Issued != nil, err, tt.want)
				}
			}
		})
	}
}

// Sign rejects a result whose token Verify would reject for its submods,
// names the submodule and the value, and leaves the result unchanged.
func TestSignChecksSubmods(t *testing.T) {
	tests := []struct {
		name    string
		change  func(r *Result)
		wantErr string
	}{
		{"submods nil", func(r *Result) { r.Submods = nil }, "submods is missing or empty"},
		{"submods empty", func(r *Result) { r.Submods = map[string]*Appraisal{} }, "submods is missing or empty"},
		{"appraisal null", func(r *Result) { r.Submods["gpu0"] = nil }, "submods.gpu0 is null"},
		{"status missing", func(r *Result) { r.Submods["cpu0"].Status = "" }, "submods.cpu0 is missing ear.status"},
		{"status unknown", func(r *Result) { r.Submods["cpu0"].Status = "trusted" }, `submods.cpu0 ear.status is "trusted", not one of none, affirming, warning or contraindicated`},
		{"status in capitals", func(r *Result) { r.Submods["cpu0"].Status = "AFFIRMING" }, `submods.cpu0 ear.status is "AFFIRMING"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSigner(t)
			s.Issued = &Issued{}
			r := sampleResult()
			tt.change(r)
			tok, err := s.Sign(r, time.Now())
			if err == nil {
				t.Fatalf("Sign returned token %q, want an error", tok)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Sign error = %q, want it to contain %q", err, tt.wantErr)
			}
			if r.Profile != "" || r.ID != "" || r.IssuedAt != 0 {
				t.Errorf("Sign changed the rejected result: profile %q, jti %q, iat %d", r.Profile, r.ID, r.IssuedAt)
			}
			if n := s.Issued.Len(); n != 0 {
				t.Errorf("Sign remembered %d tokens for a rejected result", n)
			}
		})
	}

	for _, status := range []Status{StatusNone, StatusAffirming, StatusWarning, StatusContraindicated} {
		r := sampleResult()
		r.Submods["cpu0"].Status = status
		if _, err := newTestSigner(t).Sign(r, time.Now()); err != nil {
			t.Errorf("Sign of status %s: %v", status, err)
		}
	}
}
