package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// forEachBackend runs fn as a subtest per store.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// wantProblem checks that err is a KBS problem of the variant and status.
func wantProblem(t *testing.T, err error, variant string, status int) {
	t.Helper()
	var p *kbs.Problem
	if !errors.As(err, &p) {
		t.Fatalf("error = %v, want KBS problem %s", err, variant)
	}
	if p.Variant() != variant {
		t.Errorf("problem type = %s, want %s", p.Type, kbs.ProblemTypePrefix+variant)
	}
	if p.Status != status {
		t.Errorf("status = %d, want %d", p.Status, status)
	}
}

func TestReleaseFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		ctx := context.Background()

		for _, bearer := range []bool{false, true} {
			c := ts.newClient(t, "good")
			c.Bearer = bearer
			got, err := c.Resource(ctx, testSecretPath)
			if err != nil {
				t.Fatalf("bearer=%v: %v", bearer, err)
			}
			if !bytes.Equal(got, testSecret) {
				t.Errorf("bearer=%v: secret = %q, want %q", bearer, got, testSecret)
			}
		}

		recs, err := ts.store.ListAudit(ctx, store.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var attests, releases int
		for _, r := range recs {
			switch r.Action {
			case store.AuditAttest:
				attests++
				if r.Verdict != string(ear.StatusAffirming) || r.EvidenceDigest == "" || r.PolicyDigest == "" {
					t.Errorf("attest audit record = %+v", r)
				}
			case store.AuditRelease:
				releases++
				if r.Resource != testSecretPath {
					t.Errorf("release audit resource = %q", r.Resource)
				}
			}
		}
		if attests != 2 || releases != 2 {
			t.Errorf("audit has %d attest and %d release records, want 2 and 2", attests, releases)
		}
	})
}

// The token is an EAR that a relying party verifies with go-jose from the
// service's JWKS endpoint, and it carries the claims the KBS reads.
func TestTokenIsEARVerifiableFromJWKS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		_, token := ts.attestClient(t, "good")

		resp, err := ts.Client().Get(ts.URL + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(parsed.Headers[0].KeyID)
		if len(keys) != 1 {
			t.Fatalf("token kid %q not in JWKS", parsed.Headers[0].KeyID)
		}
		var claims map[string]any
		if err := parsed.Claims(keys[0].Key, &claims); err != nil {
			t.Fatal(err)
		}
		if claims["eat_profile"] != ear.Profile {
			t.Errorf("eat_profile = %v", claims["eat_profile"])
		}
		cpu0 := claims["submods"].(map[string]any)["cpu0"].(map[string]any)
		if cpu0["ear.status"] != "affirming" {
			t.Errorf("ear.status = %v, reasons %v", cpu0["ear.status"], cpu0["cloister.reasons"])
		}
		for _, k := range []string{"ear.trustworthiness-vector", "ear.appraisal-policy-id", "cloister.key-claims", "cloister.digests"} {
			if cpu0[k] == nil {
				t.Errorf("cpu0 lacks %s", k)
			}
		}
		annotated := cpu0["ear.veraison.annotated-evidence"].(map[string]any)
		if annotated["runtime_data_claims"].(map[string]any)["tee-pubkey"] == nil {
			t.Error("token lacks runtime_data_claims.tee-pubkey")
		}
		snpClaims, _ := annotated["snp"].(map[string]any)
		if snpClaims == nil {
			t.Fatal("token lacks the snp claims")
		}
		if snpClaims["measurement"] == nil || snpClaims["checks"] == nil {
			t.Errorf("snp claims lack the measurement or the checks: %v", snpClaims)
		}
		// The chain and collateral lists stay out of the token, because
		// the collateral digest identifies them.
		for _, k := range []string{"chain", "collateral"} {
			if _, ok := snpClaims[k]; ok {
				t.Errorf("snp claims in the token carry %q", k)
			}
		}
		exp, iat := claims["exp"].(float64), claims["iat"].(float64)
		if exp-iat != ear.DefaultLifetime.Seconds() {
			t.Errorf("exp - iat = %v s, want %v", exp-iat, ear.DefaultLifetime.Seconds())
		}
	})
}

// Each failure below leaves the guest without the secret and with the
// problem type and status Trustee's guests expect.
func TestRejections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		ctx := context.Background()

		t.Run("policy miss", func(t *testing.T) {
			_, err := ts.newClient(t, "unknown").Resource(ctx, testSecretPath)
			wantProblem(t, err, kbs.ProblemPolicyDeny, http.StatusUnauthorized)
		})
		t.Run("debug TEE", func(t *testing.T) {
			_, err := ts.newClient(t, "debug").Resource(ctx, testSecretPath)
			wantProblem(t, err, kbs.ProblemPolicyDeny, http.StatusUnauthorized)
		})
		t.Run("report data does not bind the key", func(t *testing.T) {
			c := ts.newClient(t, "good")
			c.Attester = fixedReportData{testEmulators(t)["good"]}
			_, err := c.Attest(ctx)
			wantProblem(t, err, kbs.ProblemAttestationError, http.StatusUnauthorized)
		})
		t.Run("no token", func(t *testing.T) {
			resp := get(t, ts, "/kbs/v0/resource/"+testSecretPath, "")
			wantProblemResponse(t, resp, kbs.ProblemTokenNotFound, http.StatusUnauthorized)
		})
		t.Run("missing resource", func(t *testing.T) {
			_, err := ts.newClient(t, "good").Resource(ctx, "default/key/absent")
			wantProblem(t, err, kbs.ProblemPluginInternalError, http.StatusUnauthorized)
		})
		t.Run("unknown plugin", func(t *testing.T) {
			resp := get(t, ts, "/kbs/v0/nonexistent/a/b", "")
			wantProblemResponse(t, resp, kbs.ProblemPluginNotFound, http.StatusNotFound)
			resp = get(t, ts, "/kbs/v0/auth", "")
			wantProblemResponse(t, resp, kbs.ProblemPluginNotFound, http.StatusNotFound)
		})
		t.Run("resource write without admin", func(t *testing.T) {
			resp := post(t, ts, nil, "/kbs/v0/resource/"+testSecretPath, "new value")
			body := wantProblemResponse(t, resp, kbs.ProblemAdminAuthInitialization, http.StatusUnauthorized)
			if !strings.Contains(body, "POST /kbs/v0/resource/"+testSecretPath) {
				t.Errorf("detail = %s, want it to name the request", body)
			}
			secret, err := ts.newClient(t, "good").Resource(ctx, testSecretPath)
			if err != nil {
				t.Fatalf("Resource after the rejected write: %v", err)
			}
			if !bytes.Equal(secret, testSecret) {
				t.Errorf("secret after the rejected write = %q, want %q", secret, testSecret)
			}
		})
		t.Run("version mismatch", func(t *testing.T) {
			resp := post(t, ts, nil, "/kbs/v0/auth", `{"version":"0.3.0","tee":"snp","extra-params":""}`)
			body := wantProblemResponse(t, resp, kbs.ProblemAttestationError, http.StatusUnauthorized)
			if !strings.Contains(body, "KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.3.0") {
				t.Errorf("detail = %s", body)
			}
		})
	})
}

func TestEmulatedRejectedByDefault(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: false})
		c, token := ts.attestClient(t, "good")
		if got := statusOf(t, token); got != ear.StatusContraindicated {
			t.Errorf("ear.status = %s, want contraindicated", got)
		}
		_, err := c.Resource(context.Background(), testSecretPath)
		wantProblem(t, err, kbs.ProblemPolicyDeny, http.StatusUnauthorized)
	})
}

func TestReplayedNonce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		jar, _ := cookiejar.New(nil)

		// Session A: a correct attestation body.
		nonceA := auth(t, ts, jar)
		bodyA := attestBody(t, nonceA)
		resp := post(t, ts, jar, "/kbs/v0/attest", bodyA)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("first attest: %s", resp.Status)
		}

		// Session B: the same body, with session A's nonce and evidence.
		jarB, _ := cookiejar.New(nil)
		auth(t, ts, jarB)
		resp = post(t, ts, jarB, "/kbs/v0/attest", bodyA)
		wantProblemResponse(t, resp, kbs.ProblemAttestationError, http.StatusUnauthorized)
	})
}

func TestExpiredNonce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		jar, _ := cookiejar.New(nil)
		nonce := auth(t, ts, jar)
		body := attestBody(t, nonce)
		ts.clock.Advance(kbs.DefaultSessionTimeout + time.Second)
		// The cookie jar runs on the real clock, so it still sends the
		// cookie; the service's clock is past the session's expiry.
		resp := post(t, ts, jar, "/kbs/v0/attest", body)
		wantProblemResponse(t, resp, kbs.ProblemAttestationError, http.StatusUnauthorized)
	})
}

func TestExpiredToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		_, token := ts.attestClient(t, "good")
		ts.clock.Advance(ear.DefaultLifetime + ear.Leeway + time.Second)
		resp := get(t, ts, "/kbs/v0/resource/"+testSecretPath, token)
		wantProblemResponse(t, resp, kbs.ProblemTokenVerifierError, http.StatusUnauthorized)
	})
}

// A replica that signs with another EAR key rejects the tokens of the
// first, and its log names both keys and the fix.
func TestReplicaWithOtherSigningKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		other, logs := startLogged(t, ts, func(c *Config) { c.SigningKey = otherKey })
		_, token := ts.attestClient(t, "good")

		resp := get(t, other, "/kbs/v0/resource/"+testSecretPath, token)
		wantProblemResponse(t, resp, kbs.ProblemTokenVerifierError, http.StatusUnauthorized)
		for _, part := range []string{ts.srv.signer.KeyID(), other.srv.signer.KeyID(), "same EAR key", ear.KeyFile, `"level":"WARN"`} {
			if !strings.Contains(logs.String(), part) {
				t.Errorf("log does not contain %q:\n%s", part, logs)
			}
		}
	})
}

// sealedElsewhere is a store whose secrets are sealed under a master key
// that the service does not have.
type sealedElsewhere struct{ store.Store }

func (sealedElsewhere) GetSecret(ctx context.Context, path string) (*store.Secret, error) {
	return nil, fmt.Errorf("%w: secret %s is wrapped by master key mk-other", store.ErrDecrypt, path)
}

func (sealedElsewhere) OpenSecret(sealed *store.SealedSecret) (*store.Secret, error) {
	return nil, fmt.Errorf("%w: secret %s is wrapped by master key mk-other", store.ErrDecrypt, sealed.Path)
}

func (s sealedElsewhere) UnopenableSecrets(ctx context.Context) ([]store.SecretInfo, int, error) {
	list, err := s.ListSecrets(ctx, "")
	return list, len(list), err
}

// A secret that exists but does not decrypt is denied as secret_error, not
// as not_found, and logged as an error, because an operator must fix it.
func TestResourceSealedUnderOtherKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		other, logs := startLogged(t, ts, func(c *Config) { c.Store = sealedElsewhere{ts.store} })
		c, _ := other.attestClient(t, "good")

		_, err := c.Resource(context.Background(), testSecretPath)
		var p *kbs.Problem
		if !errors.As(err, &p) || p.Variant() != kbs.ProblemPluginInternalError {
			t.Fatalf("resource = %v, want %s", err, kbs.ProblemPluginInternalError)
		}
		if rec := auditRecordOf(t, ts.store, store.AuditDeny); rec.Verdict != "secret_error" {
			t.Errorf("deny record verdict = %q, want secret_error", rec.Verdict)
		}
		if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), "mk-other") {
			t.Errorf("log has no error line naming the master key:\n%s", logs)
		}

		// The gauge and /readyz show the fault before any guest requests a
		// secret.
		for _, svc := range []struct {
			name       string
			ts         *testService
			wantMetric string
			wantReadyz int
		}{
			{"sealing key", ts, "cloister_secrets_unopenable 0", http.StatusOK},
			{"other key", other, "cloister_secrets_unopenable 1", http.StatusServiceUnavailable},
		} {
			svc.ts.srv.countUnopenableSecrets(context.Background())
			body, _ := io.ReadAll(get(t, svc.ts, "/metrics", "").Body)
			if !strings.Contains(string(body), svc.wantMetric) {
				t.Errorf("%s: /metrics does not contain %q", svc.name, svc.wantMetric)
			}
			resp := get(t, svc.ts, "/readyz", "")
			body, _ = io.ReadAll(resp.Body)
			if resp.StatusCode != svc.wantReadyz {
				t.Errorf("%s: /readyz = %d %s, want %d", svc.name, resp.StatusCode, body, svc.wantReadyz)
			}
			if svc.wantReadyz != http.StatusOK && !strings.Contains(string(body), "master key") {
				t.Errorf("%s: /readyz body %q does not name the master key", svc.name, body)
			}
		}
	})
}

// A token whose tee-pubkey was swapped for another key fails verification,
// and the holder of another key cannot decrypt what the service sends.
func TestDifferentTEEKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		_, token := ts.attestClient(t, "good")

		// Swap the key in the claims; the signature no longer matches.
		otherKey, _ := kbs.GenerateKey("P-256")
		otherJWK, _ := kbs.PublicKeyJWK(otherKey)
		parts := strings.Split(token, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		json.Unmarshal(payload, &claims)
		rd := claims["submods"].(map[string]any)["cpu0"].(map[string]any)["ear.veraison.annotated-evidence"].(map[string]any)["runtime_data_claims"].(map[string]any)
		rd["tee-pubkey"] = otherJWK
		payload, _ = json.Marshal(claims)
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
		resp := get(t, ts, "/kbs/v0/resource/"+testSecretPath, forged)
		wantProblemResponse(t, resp, kbs.ProblemTokenVerifierError, http.StatusUnauthorized)

		// The genuine token releases a JWE only the attested key opens.
		resp = get(t, ts, "/kbs/v0/resource/"+testSecretPath, token)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("resource with the genuine token: %s", resp.Status)
		}
		body, _ := io.ReadAll(resp.Body)
		jwe, err := kbs.ParseResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kbs.Decrypt(otherKey, jwe); err == nil {
			t.Error("another TEE key decrypted the secret")
		}
	})
}

func TestUnauthenticatedAdminCall(t *testing.T) {
	adminHandler := adminForTest(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true, admin: adminHandler})
		for _, path := range []string{"/admin/v0/secrets", "/admin/v0/policies", "/admin/v0/audit"} {
			resp := get(t, ts, path, "")
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s without credentials: %s, want 401", path, resp.Status)
			}
		}

		// An authenticated operator replaces the resource policy; the
		// next release follows it.
		put := func(module string) int {
			req, _ := http.NewRequest(http.MethodPut, ts.URL+"/admin/v0/policies/resource/"+DefaultResourcePolicyName, strings.NewReader(module))
			req.Header.Set("Authorization", "Bearer test-admin-key-0123456789abcdef")
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := put("package broken\nallow if {"); code != http.StatusBadRequest {
			t.Errorf("PUT of an invalid policy: %d, want 400", code)
		}
		if code := put("package deny_all\ndefault allow := false\n"); code/100 != 2 {
			t.Fatalf("PUT of a deny-all policy: %d", code)
		}
		_, err := ts.newClient(t, "good").Resource(context.Background(), testSecretPath)
		wantProblem(t, err, kbs.ProblemPolicyDeny, http.StatusUnauthorized)
	})
}

func TestHealthMetricsAndJWKS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		if _, err := ts.newClient(t, "good").Resource(context.Background(), testSecretPath); err != nil {
			t.Fatal(err)
		}
		for path, want := range map[string]string{
			"/healthz": "",
			"/readyz":  "",
			"/metrics": `cloister_attestations_total{status="affirming",tee="snp"} 1`,
		} {
			resp := get(t, ts, path, "")
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %s", path, resp.Status)
			}
			if !strings.Contains(string(body), want) {
				t.Errorf("GET %s lacks %q", path, want)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("GET %s: no X-Request-Id", path)
			}
		}
		resp := get(t, ts, "/metrics", "")
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `cloister_resource_requests_total{outcome="released"} 1`) {
			t.Error("metrics lack the release counter")
		}
		// The round trip wrote the session at /auth, the attested session
		// with its audit record at /attest, and the release record.
		if !strings.Contains(string(body), "cloister_kbs_commit_writes_sum 3\n") {
			t.Error("metrics lack the three group-committed writes of one round trip")
		}
	})
}

// The sample flow vector's /attest body is accepted for a session whose
// nonce is the vector's. Sample evidence is unsigned, so the default
// attestation policy contraindicates it and even a resource policy that
// allows everything gets no secret. Once an attestation policy accepts
// sample evidence, the released JWE opens with the vector's key.
func TestSampleFlowVector(t *testing.T) {
	tests := []struct {
		name              string
		attestationPolicy string
		wantStatus        ear.Status
		wantRelease       bool
	}{
		{"default attestation policy", "", ear.StatusContraindicated, false},
		{"accepting attestation policy", "package accept_sample\ndeny := set()\n", ear.StatusAffirming, true},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ts := startService(t, b, serviceOptions{allowEmulated: true})
				ctx := context.Background()
				v := loadSampleFlow(t)
				if _, err := ts.store.PutPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName,
					"package permissive\nallow := true\n"); err != nil {
					t.Fatal(err)
				}
				if tt.attestationPolicy != "" {
					if _, err := ts.store.PutPolicy(ctx, store.PolicyAttestation, "sample", tt.attestationPolicy); err != nil {
						t.Fatal(err)
					}
				}

				jar, status := attestSampleVector(t, ts, v, "4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99")
				if status != tt.wantStatus {
					t.Errorf("sample ear.status = %s, want %s", status, tt.wantStatus)
				}
				resp := getWithJar(t, ts, jar, "/kbs/v0/resource/"+testSecretPath)
				if !tt.wantRelease {
					wantProblemResponse(t, resp, kbs.ProblemPolicyDeny, http.StatusUnauthorized)
					return
				}
				wantSecret(t, resp, v.privateKey(t))
			})
		}
	})
}

// attestSampleVector posts the sample flow vector's /attest body for a new
// session with the vector's nonce and returns the session's cookie jar
// and the token's ear.status.
func attestSampleVector(t *testing.T, ts *testService, v sampleFlow, sessionID string) (http.CookieJar, ear.Status) {
	t.Helper()
	jar := sampleSession(t, ts, sessionID, v.Challenge.Nonce)
	resp := post(t, ts, jar, "/kbs/v0/attest", v.AttestBody)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("attest: %s %s", resp.Status, body)
	}
	var tok kbs.AttestationToken
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatal(err)
	}
	return jar, statusOf(t, tok.Token)
}

// fixedReportData is an attester that ignores the runtime-data digest, as
// a guest would that binds the wrong data.
type fixedReportData struct{ attest.Attester }

func (f fixedReportData) Attest(ctx context.Context, _ []byte) (*attest.Evidence, error) {
	return f.Attester.Attest(ctx, bytes.Repeat([]byte{7}, 48))
}

// An attestation policy whose deny reasons have the wrong shape fails at
// evaluation, and the guest gets no token and no secret. This policy denies
// only claims with debug false, so it passes the upload check, which
// appraises empty claims.
func TestMisshapenDenyReasonsReject(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	module := "package p\n\ndeny contains {\"rule\": \"r\", \"claim\": \"c\", \"value\": true, \"expected\": false, \"message\": \"m\"} if input.claims.debug == false\n"
	if err := ValidatePolicy(store.PolicyAttestation, "snp", module); err != nil {
		t.Fatalf("policy rejected at upload: %v", err)
	}
	if _, err := ts.store.PutPolicy(context.Background(), store.PolicyAttestation, "snp", module); err != nil {
		t.Fatal(err)
	}
	_, err := ts.newClient(t, "good").Resource(context.Background(), testSecretPath)
	wantProblem(t, err, kbs.ProblemAttestationError, http.StatusUnauthorized)
}

// A guest whose result the resource policy denies attests once for a
// Resource call that starts without a token. It attests again once only
// when it held a token from an earlier call, which may have been stale.
func TestClientReattestsOnlyForHeldToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		ctx := context.Background()
		attestations := func() int {
			t.Helper()
			recs, err := ts.store.ListAudit(ctx, store.AuditQuery{Action: store.AuditAttest})
			if err != nil {
				t.Fatal(err)
			}
			return len(recs)
		}
		c := ts.newClient(t, "unknown")

		_, err := c.Resource(ctx, testSecretPath)
		wantProblem(t, err, kbs.ProblemPolicyDeny, http.StatusUnauthorized)
		if n := attestations(); n != 1 {
			t.Errorf("first call: %d attestations, want 1", n)
		}

		_, err = c.Resource(ctx, testSecretPath)
		wantProblem(t, err, kbs.ProblemPolicyDeny, http.StatusUnauthorized)
		if n := attestations(); n != 2 {
			t.Errorf("after the second call: %d attestations, want 2", n)
		}
	})
}

// countedSecrets is a store that reports unopenable of stored secrets,
// or err.
type countedSecrets struct {
	store.Store
	unopenable, stored *int
	err                *error
}

func (c countedSecrets) UnopenableSecrets(context.Context) ([]store.SecretInfo, int, error) {
	if *c.err != nil {
		return nil, 0, *c.err
	}
	list := make([]store.SecretInfo, *c.unopenable)
	for i := range list {
		list[i].MasterKeyID = "mk-other"
	}
	return list, *c.stored, nil
}

// /readyz fails only while the master key opens none of the stored
// secrets, and recovers once it opens them again. A few stale versions
// beside openable ones do not make a replica unready.
func TestReadyzMasterKeyMismatch(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	var unopenable, stored int
	var countErr error
	svc, logs := startLogged(t, ts, func(c *Config) {
		c.Store = countedSecrets{ts.store, &unopenable, &stored, &countErr}
	})
	for _, tc := range []struct {
		name               string
		unopenable, stored int
		countErr           error
		want               int
	}{
		{"no secrets", 0, 0, nil, http.StatusOK},
		{"stale versions only", 1, 2, nil, http.StatusOK},
		{"wrong master key", 2, 2, nil, http.StatusServiceUnavailable},
		{"failed count keeps the state", 0, 2, errors.New("database unreachable"), http.StatusServiceUnavailable},
		{"right key again", 0, 2, nil, http.StatusOK},
	} {
		unopenable, stored, countErr = tc.unopenable, tc.stored, tc.countErr
		svc.srv.countUnopenableSecrets(context.Background())
		resp := get(t, svc, "/readyz", "")
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: /readyz = %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	for _, line := range []string{"master key opens none of the stored secrets", `"sealed_under":["mk-other"]`, "master key opens the stored secrets again"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log does not contain %q:\n%s", line, logs)
		}
	}
	// The failing probes stay out of the error log: only the change to
	// the mismatch and the failed count are errors.
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 2 {
		t.Errorf("log has %d error lines, want 2:\n%s", n, logs)
	}
}
