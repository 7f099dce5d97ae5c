package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

func get(t *testing.T, ts *testService, path, bearer string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func getWithJar(t *testing.T, ts *testService, jar http.CookieJar, path string) *http.Response {
	t.Helper()
	hc := &http.Client{Transport: ts.Client().Transport, Jar: jar}
	resp, err := hc.Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func post(t *testing.T, ts *testService, jar http.CookieJar, path, body string) *http.Response {
	t.Helper()
	hc := &http.Client{Transport: ts.Client().Transport, Jar: jar}
	resp, err := hc.Post(ts.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// sampleSession stores a session of the sample TEE with id and nonce, as
// /auth would create it, and returns a cookie jar that carries its ID.
func sampleSession(t *testing.T, ts *testService, id, nonce string) http.CookieJar {
	t.Helper()
	now := ts.clock.Now()
	sess := store.Session{ID: id, Nonce: nonce, TEE: "sample", Created: now, Expires: now.Add(kbs.DefaultSessionTimeout)}
	if err := ts.store.CreateSession(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(mustURL(t, ts.URL+"/kbs/v0/"), []*http.Cookie{{Name: kbs.SessionCookie, Value: id}})
	return jar
}

// wantProblemResponse checks the status and the KBS error body of resp and
// returns the body.
func wantProblemResponse(t *testing.T, resp *http.Response, variant string, status int) string {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	p, err := kbs.ParseProblem(resp.StatusCode, body)
	if err != nil {
		t.Fatalf("%s: %v", resp.Status, err)
	}
	wantProblem(t, p, variant, status)
	return string(body)
}

// auth runs /auth with jar and returns the challenge nonce.
func auth(t *testing.T, ts *testService, jar http.CookieJar) string {
	t.Helper()
	resp := post(t, ts, jar, "/kbs/v0/auth", `{"version":"0.4.0","tee":"snp","extra-params":{"supported-hash-algorithms":["sha384"]}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("auth: %s", resp.Status)
	}
	var ch kbs.Challenge
	if err := json.NewDecoder(resp.Body).Decode(&ch); err != nil {
		t.Fatal(err)
	}
	if string(ch.ExtraParams) != `""` {
		t.Errorf("challenge extra-params = %s, want \"\"", ch.ExtraParams)
	}
	return ch.Nonce
}

// attestBody returns a correct /attest body for nonce, with evidence from
// the good emulator and a fresh TEE key.
func attestBody(t *testing.T, nonce string) string {
	t.Helper()
	key, _ := kbs.GenerateKey("P-256")
	pub, _ := kbs.PublicKeyJWK(key)
	digest, err := kbs.PrimaryDigest(kbs.DefaultHash, nonce, pub, "")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := testEmulators(t)["good"].Attest(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	primary, _ := json.Marshal(ev)
	body, _ := json.Marshal(kbs.Attestation{
		RuntimeData: kbs.RuntimeData{Nonce: nonce, TEEPubKey: pub},
		TEEEvidence: kbs.TEEEvidence{PrimaryEvidence: primary},
	})
	return string(body)
}

// statusOf returns the cpu0 ear.status of a token, read without checking
// the signature.
func statusOf(t *testing.T, token string) ear.Status {
	t.Helper()
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err == nil {
		var r ear.Result
		if err := parsed.UnsafeClaimsWithoutVerification(&r); err == nil && r.Submods["cpu0"] != nil {
			return r.Submods["cpu0"].Status
		}
	}
	t.Fatalf("token without cpu0 status: %v", err)
	return ""
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sampleFlow holds the parts of the sample exchange vector the service
// tests replay.
type sampleFlow struct {
	PrivateKey struct {
		PKCS8 string `json:"pkcs8_pem"`
	} `json:"tee_private_key"`
	Challenge  kbs.Challenge `json:"challenge_response_body"`
	AttestBody string        `json:"attest_request_body_bytes"`
}

func (v sampleFlow) privateKey(t *testing.T) any {
	block, _ := pem.Decode([]byte(v.PrivateKey.PKCS8))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// loadSampleFlow reads the sample exchange from the KBS vectors, from
// CLOISTER_KBS_VECTORS or beside the module root; it skips when they are
// absent, except under CI.
func loadSampleFlow(t *testing.T) sampleFlow {
	dir := os.Getenv("CLOISTER_KBS_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "protocols", "kbs-vectors")
	}
	data, err := os.ReadFile(filepath.Join(dir, "cloister_sample-flow-p256.json"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("KBS vectors not found: %v", err)
	}
	var v sampleFlow
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// unverifiedClaims returns a token's claims without checking the signature.
func unverifiedClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := parsed.UnsafeClaimsWithoutVerification(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// unverifiedSubmod returns the claims of the submodule name of token, read
// without checking the signature, or nil when the token has no such
// submodule.
func unverifiedSubmod(t *testing.T, token, name string) map[string]any {
	t.Helper()
	submods, _ := unverifiedClaims(t, token)["submods"].(map[string]any)
	submod, _ := submods[name].(map[string]any)
	return submod
}

// wantSecret checks that resp is a 200 whose JWE opens with key to
// testSecret.
func wantSecret(t *testing.T, resp *http.Response, key crypto.PrivateKey) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resource: %s %s", resp.Status, body)
	}
	jwe, err := kbs.ParseResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := kbs.Decrypt(key, jwe)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret, testSecret) {
		t.Errorf("secret = %q, want %q", secret, testSecret)
	}
}
