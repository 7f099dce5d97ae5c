package admin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// tokenTestNow is the server's clock in the token tests.
var tokenTestNow = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)

func newEd25519Key(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// signToken signs claims with EdDSA the way kbs-client does: a compact JWS
// with header {"alg":"EdDSA","typ":"JWT"}.
func signToken(t testing.TB, priv ed25519.PrivateKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// unsignedToken builds a compact JWS with any header, and a signature
// computed by sign over the signing input (none when sign is nil).
func unsignedToken(header string, claims map[string]any, sign func(input []byte) []byte) string {
	payload, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// kbsClientClaims are the claims kbs-client up to v0.20.0 signs.
func kbsClientClaims() map[string]any {
	now := tokenTestNow.Unix()
	return map[string]any{"iat": now, "exp": now + 7200}
}

func keyName(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// newTokenServer serves the admin API and Trustee's admin endpoints on
// loopback, routed as the service routes them, with token keys only.
func newTokenServer(t *testing.T, cfg Config) (*httptest.Server, store.Store) {
	t.Helper()
	cfg.Store = newTestStore(t)
	cfg.Logger = quietLogger()
	cfg.Now = func() time.Time { return tokenTestNow }
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(PathPrefix, h)
	trustee := h.Trustee()
	for _, pattern := range h.TrusteeRoutes() {
		mux.Handle(pattern, trustee)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, cfg.Store
}

func sendWithToken(t *testing.T, srv *httptest.Server, method, path, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func TestTokenSetsResource(t *testing.T) {
	pub, priv := newEd25519Key(t)
	srv, st := newTokenServer(t, Config{TokenKeys: []ed25519.PublicKey{pub}})
	claims := kbsClientClaims()
	claims["sub"] = "operator@example.com"
	token := signToken(t, priv, claims)

	status, body := sendWithToken(t, srv, http.MethodPost, "/kbs/v0/resource/default/key/1", token, []byte("secret"))
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", status, body)
	}
	list, err := st.ListSecrets(context.Background(), "")
	if err != nil || len(list) != 1 {
		t.Fatalf("secrets = %+v, %v; want one", list, err)
	}

	audit, err := st.ListAudit(context.Background(), store.AuditQuery{Action: store.AuditAdmin})
	if err != nil || len(audit) != 1 {
		t.Fatalf("admin audit records = %+v, %v; want one", audit, err)
	}
	want := keyName(pub) + ` sub "operator@example.com"`
	if audit[0].Requester != want {
		t.Errorf("audit requester = %q, want %q", audit[0].Requester, want)
	}
}

func TestTokenOnAdminAPI(t *testing.T) {
	pub, priv := newEd25519Key(t)
	other, _ := newEd25519Key(t)
	srv, _ := newTokenServer(t, Config{TokenKeys: []ed25519.PublicKey{other, pub}})

	token := signToken(t, priv, kbsClientClaims())
	for _, path := range []string{PathPrefix + "secrets", "/kbs/v0/resource-policy"} {
		status, body := sendWithToken(t, srv, http.MethodGet, path, token, nil)
		if status != http.StatusOK {
			t.Errorf("GET %s: status = %d, want 200; body %s", path, status, body)
		}
	}
	status, _ := sendWithToken(t, srv, http.MethodGet, PathPrefix+"secrets", "not-a-token", nil)
	if status != http.StatusUnauthorized {
		t.Errorf("status without a token = %d, want 401", status)
	}
}

func TestTokenRejected(t *testing.T) {
	pub, priv := newEd25519Key(t)
	_, wrongPriv := newEd25519Key(t)
	srv, st := newTokenServer(t, Config{TokenKeys: []ed25519.PublicKey{pub}})
	now := tokenTestNow.Unix()
	hmacWithPublicKey := func(input []byte) []byte {
		mac := hmac.New(sha256.New, pub)
		mac.Write(input)
		return mac.Sum(nil)
	}
	valid := signToken(t, priv, kbsClientClaims())

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"wrong key", signToken(t, wrongPriv, kbsClientClaims()), "any trusted admin token key"},
		{"expired", signToken(t, priv, map[string]any{"iat": now - 7200, "exp": now - 1}), "expired"},
		{"expires now", signToken(t, priv, map[string]any{"exp": now}), "expired"},
		{"missing exp", signToken(t, priv, map[string]any{"iat": now}), "exp claim is missing"},
		{"fractional exp", signToken(t, priv, map[string]any{"exp": float64(now) + 0.5}), "integer"},
		{"string exp", signToken(t, priv, map[string]any{"exp": "tomorrow"}), "exp claim"},
		{"iat in future", signToken(t, priv, map[string]any{"iat": now + 3600, "exp": now + 7200}), "iat claim"},
		{"nbf in future", signToken(t, priv, map[string]any{"nbf": now + 3600, "exp": now + 7200}), "nbf claim"},
		// A time past the year 9999 would wrap in time.Unix and read as past.
		{"nbf past 9999", signToken(t, priv, map[string]any{"nbf": int64(math.MaxInt64), "exp": now + 7200}), "nbf claim"},
		{"exp past 9999", signToken(t, priv, map[string]any{"exp": int64(maxNumericDate) + 1}), "exp claim"},
		{"numeric sub", signToken(t, priv, map[string]any{"exp": now + 60, "sub": 7}), "sub claim"},
		{"alg none", unsignedToken(`{"alg":"none","typ":"JWT"}`, kbsClientClaims(), nil), "none"},
		{"HS256 with public key", unsignedToken(`{"alg":"HS256","typ":"JWT"}`, kbsClientClaims(), hmacWithPublicKey), "HS256"},
		{"ES256 header", unsignedToken(`{"alg":"ES256"}`, kbsClientClaims(), nil), "ES256"},
		{"garbled", "abc.def.ghi", "EdDSA"},
		{"truncated signature", valid[:len(valid)-4], "admin token"},
		{"claims not an object", unsignedToken(`{"alg":"EdDSA"}`, nil, func(input []byte) []byte {
			return ed25519.Sign(priv, input)
		}), "JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := sendWithToken(t, srv, http.MethodPost, "/kbs/v0/resource/default/key/1", tt.token, []byte("secret"))
			if status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401; body %s", status, body)
			}
			p, err := kbs.ParseProblem(status, body)
			if err != nil {
				t.Fatal(err)
			}
			if p.Variant() != "AdminAuthInitialization" {
				t.Errorf("problem type = %q, want AdminAuthInitialization", p.Type)
			}
			if !strings.Contains(p.Detail, tt.reason) {
				t.Errorf("detail %q does not contain %q", p.Detail, tt.reason)
			}
		})
	}

	status, body := sendWithToken(t, srv, http.MethodPost, "/kbs/v0/resource-policy", signToken(t, wrongPriv, kbsClientClaims()), []byte(`{}`))
	p, err := kbs.ParseProblem(status, body)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnauthorized || p.Variant() != kbs.ProblemAdminAuthAccess {
		t.Errorf("resource-policy with a wrong key: status %d, problem %q; want 401 AdminAuthAccess", status, p.Type)
	}

	secrets, err := st.ListSecrets(context.Background(), "")
	if err != nil || len(secrets) != 0 {
		t.Errorf("secrets after rejected tokens = %+v, %v; want none", secrets, err)
	}
	audit, err := st.ListAudit(context.Background(), store.AuditQuery{Action: store.AuditAdmin})
	if err != nil || len(audit) != 0 {
		t.Errorf("admin audit records after rejected tokens = %+v, %v; want none", audit, err)
	}
}

func TestTokenRoles(t *testing.T) {
	pub, priv := newEd25519Key(t)
	writer, err := ParseTokenRole(`writer=^/kbs/v0/resource/default/.+$`)
	if err != nil {
		t.Fatal(err)
	}
	srv, st := newTokenServer(t, Config{TokenKeys: []ed25519.PublicKey{pub}, TokenRoles: []TokenRole{writer}})
	withRole := func(role string) string {
		claims := kbsClientClaims()
		if role != "" {
			claims["role"] = role
		}
		return signToken(t, priv, claims)
	}

	tests := []struct {
		name, path, token string
		status            int
	}{
		{"role allowed", "/kbs/v0/resource/default/key/1", withRole("writer"), http.StatusOK},
		{"other repository", "/kbs/v0/resource/other/key/1", withRole("writer"), http.StatusUnauthorized},
		{"other role", "/kbs/v0/resource/default/key/1", withRole("reader"), http.StatusUnauthorized},
		{"no role", "/kbs/v0/resource/default/key/1", withRole(""), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := sendWithToken(t, srv, http.MethodPost, tt.path, tt.token, []byte("secret"))
			if status != tt.status {
				t.Errorf("status = %d, want %d; body %s", status, tt.status, body)
			}
		})
	}

	// A token whose signature verified is recorded with its signer when
	// its role rules reject a change.
	records, err := st.ListAudit(context.Background(), store.AuditQuery{Action: store.AuditAdmin})
	if err != nil {
		t.Fatal(err)
	}
	var verdicts []string
	for _, rec := range records {
		verdicts = append(verdicts, rec.Verdict)
	}
	if want := []string{"applied", "rejected", "rejected", "rejected"}; !slices.Equal(verdicts, want) {
		t.Fatalf("admin record verdicts = %v, want %v", verdicts, want)
	}
	for _, rec := range records[1:] {
		if !strings.HasPrefix(rec.Requester, "ed25519:") || !strings.Contains(rec.Reason, "rejected") {
			t.Errorf("record %+v, want the token's signer and the rejection", rec)
		}
	}
}

func TestParseTokenRole(t *testing.T) {
	tests := []struct {
		rule string
		ok   bool
	}{
		{`admin=^/kbs/v0/.+$`, true},
		{`admin=^/admin/v0/(secrets|policies)(/.*)?$`, true},
		{`admin=/kbs/v0/.+`, false},
		{`admin=^/kbs/v0/.+`, false},
		{`admin=^/kbs\$`, false},
		{`admin=^(xyz$`, false},
		{`=^/kbs$`, false},
		{`admin`, false},
	}
	for _, tt := range tests {
		_, err := ParseTokenRole(tt.rule)
		if (err == nil) != tt.ok {
			t.Errorf("ParseTokenRole(%q) error = %v, want ok %v", tt.rule, err, tt.ok)
		}
	}
}

func pemBlock(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParseTokenKeys(t *testing.T) {
	pub1, _ := newEd25519Key(t)
	pub2, _ := newEd25519Key(t)
	der1, err := x509.MarshalPKIXPublicKey(pub1)
	if err != nil {
		t.Fatal(err)
	}
	der2, err := x509.MarshalPKIXPublicKey(pub2)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	keys, err := ParseTokenKeys(append(pemBlock(t, "PUBLIC KEY", der1), pemBlock(t, "PUBLIC KEY", der2)...))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !keys[0].Equal(pub1) || !keys[1].Equal(pub2) {
		t.Errorf("keys = %x, want the two keys in file order", keys)
	}

	rejected := []struct {
		name, data, reason string
	}{
		{"empty", "", "no PEM PUBLIC KEY"},
		{"not PEM", "ssh-ed25519 AAAA", "no PEM PUBLIC KEY"},
		{"P-256 key", string(pemBlock(t, "PUBLIC KEY", ecDER)), "Ed25519"},
		{"private key block", string(pemBlock(t, "PRIVATE KEY", der1)), "PRIVATE KEY"},
		{"Ed25519 and P-256", string(pemBlock(t, "PUBLIC KEY", der1)) + string(pemBlock(t, "PUBLIC KEY", ecDER)), "block 2"},
		{"garbled DER", string(pemBlock(t, "PUBLIC KEY", der1[:20])), "block 1"},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTokenKeys([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error = %v, want one containing %q", err, tt.reason)
			}
		})
	}
}

func TestTokenConfigRejected(t *testing.T) {
	role, err := ParseTokenRole(`admin=^/kbs/.+$`)
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string]Config{
		"roles without keys": {APIKey: testKey, TokenRoles: []TokenRole{role}},
		"short key":          {TokenKeys: []ed25519.PublicKey{make([]byte, 31)}},
		"role without regex": {TokenKeys: []ed25519.PublicKey{make([]byte, 32)}, TokenRoles: []TokenRole{{Role: "admin"}}},
		"negative lifetime":  {TokenKeys: []ed25519.PublicKey{make([]byte, 32)}, TokenMaxLifetime: -time.Hour},
	}
	for name, cfg := range configs {
		cfg.Store = newTestStore(t)
		if _, err := NewHandler(cfg); err == nil {
			t.Errorf("%s: NewHandler succeeded", name)
		}
	}
}

func FuzzAdminToken(f *testing.F) {
	pub, priv := newEd25519Key(f)
	f.Add(signToken(f, priv, kbsClientClaims()))
	f.Add(signToken(f, priv, map[string]any{"exp": 1e30, "iat": -1, "role": []int{1}}))
	f.Add(unsignedToken(`{"alg":"none"}`, kbsClientClaims(), nil))
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		tok, err := verifyAdminToken(token, []ed25519.PublicKey{pub}, tokenTestNow, DefaultTokenMaxLifetime)
		if err == nil && tok.requester() == "" {
			t.Error("valid token without a requester")
		}
	})
}

// Cloister's own client and commands send an admin token as they send the
// admin key: as the bearer credential, read from --admin-key-file.
func TestClientSendsToken(t *testing.T) {
	pub, priv := newEd25519Key(t)
	srv, _ := newTokenServer(t, Config{TokenKeys: []ed25519.PublicKey{pub}})
	c := &Client{BaseURL: srv.URL, APIKey: signToken(t, priv, kbsClientClaims()), HTTPClient: srv.Client()}
	if _, err := c.PutSecret(context.Background(), "default/key/by-token", []byte("secret")); err != nil {
		t.Fatalf("PutSecret with an admin token: %v", err)
	}
	list, err := c.ListSecrets(context.Background(), "")
	if err != nil || len(list) != 1 {
		t.Errorf("ListSecrets = %+v, %v; want the one secret", list, err)
	}
}

// With an issuer and an audience configured, a token must name both; a
// token's aud may be one string or an array.
func TestTokenIssuerAudience(t *testing.T) {
	pub, priv := newEd25519Key(t)
	srv, _ := newTokenServer(t, Config{TokenKeys: []ed25519.PublicKey{pub},
		TokenIssuer: "https://idp.example", TokenAudience: "cloister-admin"})
	tests := []struct {
		name   string
		claims map[string]any
		status int
	}{
		{"both", map[string]any{"iss": "https://idp.example", "aud": "cloister-admin"}, http.StatusOK},
		{"audience in an array", map[string]any{"iss": "https://idp.example", "aud": []string{"other", "cloister-admin"}}, http.StatusOK},
		{"no issuer", map[string]any{"aud": "cloister-admin"}, http.StatusUnauthorized},
		{"other issuer", map[string]any{"iss": "https://other.example", "aud": "cloister-admin"}, http.StatusUnauthorized},
		{"no audience", map[string]any{"iss": "https://idp.example"}, http.StatusUnauthorized},
		{"other audience", map[string]any{"iss": "https://idp.example", "aud": []string{"other"}}, http.StatusUnauthorized},
		{"audience not a string", map[string]any{"iss": "https://idp.example", "aud": 7}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := kbsClientClaims()
			maps.Copy(claims, tt.claims)
			status, body := sendWithToken(t, srv, http.MethodGet, "/kbs/v0/resource-policy", signToken(t, priv, claims), nil)
			if status != tt.status {
				t.Errorf("status = %d, want %d; body %s", status, tt.status, body)
			}
		})
	}
}

func TestTokenMaxLifetime(t *testing.T) {
	pub, priv := newEd25519Key(t)
	now := tokenTestNow.Unix()
	day := int64(24 * time.Hour / time.Second)
	tests := []struct {
		name        string
		maxLifetime time.Duration
		claims      map[string]any
		reason      string // empty when the token is accepted
	}{
		{"kbs-client two hours", 0, kbsClientClaims(), ""},
		{"exp at the limit", 0, map[string]any{"iat": now, "exp": now + day}, ""},
		{"exp one second over", 0, map[string]any{"iat": now, "exp": now + day + 1},
			"is 24h0m1s after iat 2026-12-05T00:00:00Z; the server accepts at most 24h0m0s; issue a shorter-lived token or raise --admin-token-max-lifetime"},
		{"old iat", 0, map[string]any{"iat": now - 30*day, "exp": now + 3600}, "is 721h0m0s after iat"},
		{"iat in 1970", 0, map[string]any{"iat": 0, "exp": now + 3600}, "after iat 1970-01-01T00:00:00Z"},
		{"exp in 9999", 0, map[string]any{"iat": now, "exp": int64(maxNumericDate)}, "is more than 292 years after iat"},
		{"no iat at the limit", 0, map[string]any{"exp": now + day}, ""},
		{"no iat one second over", 0, map[string]any{"exp": now + day + 1},
			"is 24h0m1s after the current time and the token has no iat claim"},
		{"no iat with nbf", 0, map[string]any{"nbf": now, "exp": now + 2*day}, "has no iat claim"},
		{"lower limit", time.Hour, kbsClientClaims(), "the server accepts at most 1h0m0s"},
		{"lower limit met", time.Hour, map[string]any{"iat": now, "exp": now + 3600}, ""},
		{"raised limit", 30 * 24 * time.Hour, map[string]any{"iat": now, "exp": now + 30*day}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTokenServer(t, Config{TokenKeys: []ed25519.PublicKey{pub}, TokenMaxLifetime: tt.maxLifetime})
			status, body := sendWithToken(t, srv, http.MethodGet, "/kbs/v0/resource-policy", signToken(t, priv, tt.claims), nil)
			if tt.reason == "" {
				if status != http.StatusOK {
					t.Errorf("status = %d, want 200; body %s", status, body)
				}
				return
			}

			if status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401; body %s", status, body)
			}
			p, err := kbs.ParseProblem(status, body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.Detail, tt.reason) {
				t.Errorf("detail %q does not contain %q", p.Detail, tt.reason)
			}
		})
	}
}

// Without Config.ValidatePolicy both policy endpoints reject an upload
// with the same reason, and the store keeps no policy.
func TestPolicyUploadWithoutValidator(t *testing.T) {
	pub, priv := newEd25519Key(t)
	srv, st := newTokenServer(t, Config{TokenKeys: []ed25519.PublicKey{pub}})
	token := signToken(t, priv, kbsClientClaims())
	const module = "package policy\n\nallow := true\n"

	status, body := sendWithToken(t, srv, http.MethodPut, PathPrefix+"policies/resource/default", token, []byte(module))
	if status != http.StatusServiceUnavailable {
		t.Errorf("PUT %spolicies: status = %d, want 503; body %s", PathPrefix, status, body)
	}
	if !strings.Contains(string(body), "no policy validator configured") {
		t.Errorf("PUT %spolicies: body %s does not say that no validator is configured", PathPrefix, body)
	}

	status, body = sendWithToken(t, srv, http.MethodPost, "/kbs/v0/resource-policy", token,
		[]byte(`{"policy":"`+base64.RawURLEncoding.EncodeToString([]byte(module))+`"}`))
	p, err := kbs.ParseProblem(status, body)
	if err != nil {
		t.Fatalf("POST /kbs/v0/resource-policy: status %d, body %s: %v", status, body, err)
	}
	if p.Variant() != problemParsePolicyError {
		t.Errorf("POST /kbs/v0/resource-policy: problem type = %q, want %s", p.Type, problemParsePolicyError)
	}
	if !strings.Contains(p.Detail, "no policy validator configured") {
		t.Errorf("POST /kbs/v0/resource-policy: detail %q does not say that no validator is configured", p.Detail)
	}

	list, err := st.ListPolicies(context.Background(), "")
	if err != nil {
		t.Fatalf("ListPolicies: %v", err)
	}
	if len(list) != 0 {
		t.Errorf("store has %d policies after the rejected uploads, want 0", len(list))
	}
}
