package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testService is a generated token signing key with its JWKS and, when
// chained, its certificate chain (leaf, intermediate, root).
type testService struct {
	key   *rsa.PrivateKey
	kid   string
	chain []*x509.Certificate
}

var rsaKeyCache = map[int]*rsa.PrivateKey{}

func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	if k, ok := rsaKeyCache[i]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKeyCache[i] = k
	return k
}

func newService(t testing.TB) *testService {
	return &testService{key: rsaKey(t, 0), kid: "key-1"}
}

// withChain issues a certificate chain for the signing key: a root and an
// intermediate CA, both ECDSA.
func (s *testService) withChain(t testing.TB) *testService {
	t.Helper()
	rootKey := testcert.ECDSAKey(t, elliptic.P256())
	interKey := testcert.ECDSAKey(t, elliptic.P256())
	root := issue(t, pkix.Name{CommonName: "test token root"}, &rootKey.PublicKey, nil, rootKey, true)
	inter := issue(t, pkix.Name{CommonName: "test token intermediate"}, &interKey.PublicKey, root, rootKey, true)
	leaf := issue(t, pkix.Name{CommonName: "test token signing"}, &s.key.PublicKey, inter, interKey, false)
	s.chain = []*x509.Certificate{leaf, inter, root}
	return s
}

// issue creates a certificate for subject, valid for a day either side of
// testNow and signed by signer under parent, or self-signed when parent is
// nil.
func issue(t testing.TB, subject pkix.Name, pub any, parent *x509.Certificate, signer *ecdsa.PrivateKey, ca bool) *x509.Certificate {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject,
		NotBefore: testNow.Add(-24 * time.Hour), NotAfter: testNow.Add(24 * time.Hour),
		IsCA: ca, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	return testcert.Issue(t, tmpl, parent, pub, signer)
}

// jwks returns the JWKS document of the service, with x5c when chained.
func (s *testService) jwks(t testing.TB, alg string) []byte {
	t.Helper()
	jwk := jose.JSONWebKey{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: alg, Use: "sig", Certificates: s.chain}
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// sign returns a compact JWS of claims under alg with the given extra
// header members. The header names the service's kid unless it is empty.
func (s *testService) sign(t testing.TB, alg jose.SignatureAlgorithm, claims any, headers map[jose.HeaderKey]any) string {
	t.Helper()
	payload, ok := claims.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(claims); err != nil {
			t.Fatal(err)
		}
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if s.kid != "" {
		opts = opts.WithHeader("kid", s.kid)
	}
	for k, v := range headers {
		opts = opts.WithHeader(k, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: s.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func x5cHeader(chain []*x509.Certificate) map[jose.HeaderKey]any {
	var enc []string
	for _, c := range chain {
		enc = append(enc, base64.StdEncoding.EncodeToString(c.Raw))
	}
	return map[jose.HeaderKey]any{"x5c": enc}
}

func gcpClaims() map[string]any {
	return map[string]any{
		"iss": gcpIssuer, "aud": "https://relying-party.example", "sub": "https://www.googleapis.com/compute/v1/projects/p/zones/z/instances/i",
		"iat": testNow.Add(-time.Minute).Unix(), "nbf": testNow.Add(-time.Minute).Unix(), "exp": testNow.Add(time.Hour).Unix(),
		"dbgstat": "disabled-since-boot", "hwmodel": "GCP_INTEL_TDX", "swname": "CONFIDENTIAL_SPACE", "swversion": []string{"250301"},
		"eat_nonce":          "a nonce between 10 and 74 characters",
		"support_attributes": []string{"LATEST", "STABLE", "USABLE"},
		"submods": map[string]any{
			"container": map[string]any{"image_digest": "sha256:" + strings.Repeat("ab", 32), "image_reference": "registry.example/app:1"},
			"gce":       map[string]any{"project_id": "p", "zone": "z", "instance_id": "1"},
		},
	}
}

func setOf(t testing.TB, docs ...[]byte) *collateral.Set {
	t.Helper()
	set := &collateral.Set{}
	for i, d := range docs {
		if n, reason := set.AddBytes("doc"+string(rune('0'+i)), d); n == 0 {
			t.Fatal(reason)
		}
	}
	return set
}

// expectRejected checks that err wraps kind and that its message contains
// each of parts, such as the name of the claim and its value.
func expectRejected(t *testing.T, err, kind error, parts ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want %v", err, kind)
	}
	for _, part := range parts {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
}

func verifyWith(t *testing.T, v Verifier, token string, set *collateral.Set, nonce []byte) (*attest.Claims, error) {
	t.Helper()
	return v.Verify(context.Background(), attest.Evidence{Data: []byte(token)}, attest.Options{At: testNow, Collateral: set, Nonce: nonce})
}

func TestGCPOIDCToken(t *testing.T) {
	s := newService(t)
	token := s.sign(t, jose.RS256, gcpClaims(), nil)
	c, err := verifyWith(t, GCP, token, setOf(t, s.jwks(t, "RS256")), []byte("a nonce between 10 and 74 characters"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Debug {
		t.Error("dbgstat disabled-since-boot reported as debug")
	}
	if c.Measurements["image_digest"].String() != strings.Repeat("ab", 32) {
		t.Errorf("image digest %s", c.Measurements["image_digest"])
	}
	if c.TrustAnchor.Kind != attest.AnchorCallerKey {
		t.Errorf("trust anchor kind %s, want caller-key", c.TrustAnchor.Kind)
	}
	if c.Product != "GCP_INTEL_TDX" || c.Platform["gce_project_id"] != "p" {
		t.Errorf("product %q, platform %v", c.Product, c.Platform)
	}
}

func TestGCPDebugStatus(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, "RS256"))
	for dbgstat, debug := range map[string]bool{"disabled-since-boot": false, "enabled": true, "disabled": true} {
		claims := gcpClaims()
		claims["dbgstat"] = dbgstat
		c, err := verifyWith(t, GCP, s.sign(t, jose.RS256, claims, nil), set, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Debug != debug {
			t.Errorf("dbgstat %q: debug %v, want %v", dbgstat, c.Debug, debug)
		}
	}
	claims := gcpClaims()
	delete(claims, "dbgstat")
	if _, err := verifyWith(t, GCP, s.sign(t, jose.RS256, claims, nil), set, nil); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("no dbgstat: error %v, want malformed", err)
	}
}

func TestGCPNonceList(t *testing.T) {
	s := newService(t)
	claims := gcpClaims()
	claims["eat_nonce"] = []string{"first nonce value", "second nonce value"}
	token := s.sign(t, jose.RS256, claims, nil)
	set := setOf(t, s.jwks(t, "RS256"))
	if _, err := verifyWith(t, GCP, token, set, []byte("second nonce value")); err != nil {
		t.Errorf("second nonce of the list rejected: %v", err)
	}
	if _, err := verifyWith(t, GCP, token, set, []byte("third nonce value")); !errors.Is(err, attest.ErrBinding) {
		t.Errorf("absent nonce: error %v, want a binding error", err)
	}
}

func TestGCPPKIToken(t *testing.T) {
	s := newService(t).withChain(t)
	token := s.sign(t, jose.RS256, gcpClaims(), x5cHeader(s.chain))
	root := s.chain[2]

	c, err := verifyWith(t, GCP, token, setOf(t, root.Raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.TrustAnchor.Kind != attest.AnchorCallerRoot || len(c.Chain) != 3 {
		t.Errorf("trust anchor %+v with %d certificates, want the caller's root and 3", c.TrustAnchor, len(c.Chain))
	}

	// The root inside x5c is not trusted by itself.
	if _, err := verifyWith(t, GCP, token, &collateral.Set{}, nil); !errors.Is(err, attest.ErrCollateralMissing) {
		t.Errorf("no root: error %v, want collateral missing", err)
	}
	other := newService(t).withChain(t)
	if _, err := verifyWith(t, GCP, token, setOf(t, other.chain[2].Raw), nil); !errors.Is(err, attest.ErrChain) {
		t.Errorf("another root: error %v, want a chain error", err)
	}

	// A chain whose leaf is not the signing key fails the signature.
	impostor := &testService{key: rsaKey(t, 1), kid: s.kid}
	forged := impostor.sign(t, jose.RS256, gcpClaims(), x5cHeader(s.chain))
	if _, err := verifyWith(t, GCP, forged, setOf(t, root.Raw), nil); err == nil {
		t.Error("token signed by another key under a valid chain accepted")
	}
}

func TestDisallowedAlgorithms(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, ""))
	header := func(alg string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","kid":"key-1","typ":"JWT"}`))
	}
	payload, _ := json.Marshal(gcpClaims())
	body := base64.RawURLEncoding.EncodeToString(payload)
	cases := map[string]string{
		"none":          header("none") + "." + body + ".",
		"none with sig": header("none") + "." + body + ".c2ln",
		"HS256":         hs256(t, header("HS256")+"."+body),
		"PS384 for GCP": s.sign(t, jose.PS384, gcpClaims(), nil),
	}
	for name, token := range cases {
		_, err := verifyWith(t, GCP, token, set, nil)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, attest.ErrMalformed) {
			t.Errorf("%s: error %v, want malformed", name, err)
		}
	}
}

// hs256 signs input with HMAC-SHA256 under the public modulus of a test
// key, as in the RS256-to-HS256 confusion attack.
func hs256(t *testing.T, input string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: rsaKey(t, 0).PublicKey.N.Bytes()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	sig := obj.Signatures[0].Signature
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestKeySelection(t *testing.T) {
	s := newService(t)
	token := s.sign(t, jose.RS256, gcpClaims(), nil)

	other := &testService{key: rsaKey(t, 1), kid: "key-2"}
	if _, err := verifyWith(t, GCP, token, setOf(t, other.jwks(t, "RS256")), nil); !errors.Is(err, attest.ErrCollateralMissing) {
		t.Errorf("unknown kid: error %v, want collateral missing", err)
	}
	if _, err := verifyWith(t, GCP, token, setOf(t, s.jwks(t, "PS256")), nil); !errors.Is(err, attest.ErrCollateralMissing) {
		t.Errorf("key for another alg: error %v, want collateral missing", err)
	}
	impostor := &testService{key: rsaKey(t, 1), kid: "key-1"}
	if _, err := verifyWith(t, GCP, token, setOf(t, impostor.jwks(t, "RS256")), nil); !errors.Is(err, attest.ErrSignature) {
		t.Errorf("other key under the same kid: error %v, want a signature error", err)
	}
}

func TestRegisteredClaims(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, "RS256"))
	cases := []struct {
		name string
		edit func(map[string]any)
		kind error
	}{
		{"expired", func(m map[string]any) { m["exp"] = testNow.Unix() }, attest.ErrExpired},
		{"no exp", func(m map[string]any) { delete(m, "exp") }, attest.ErrMalformed},
		{"exp as text", func(m map[string]any) { m["exp"] = "tomorrow" }, attest.ErrMalformed},
		{"future nbf", func(m map[string]any) { m["nbf"] = testNow.Add(time.Second).Unix() }, attest.ErrExpired},
		{"future iat", func(m map[string]any) { m["iat"] = testNow.Add(time.Second).Unix() }, attest.ErrExpired},
		{"other issuer", func(m map[string]any) { m["iss"] = "https://accounts.google.com" }, attest.ErrUnsupported},
		{"image digest", func(m map[string]any) {
			m["submods"] = map[string]any{"container": map[string]any{"image_digest": "md5:00"}}
		}, attest.ErrMalformed},
	}
	for _, tc := range cases {
		claims := gcpClaims()
		tc.edit(claims)
		_, err := verifyWith(t, GCP, s.sign(t, jose.RS256, claims, nil), set, nil)
		if !errors.Is(err, tc.kind) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.kind)
		}
	}
}

func TestDuplicateClaimNames(t *testing.T) {
	s := newService(t)
	payload, _ := json.Marshal(gcpClaims())
	dup := append(payload[:len(payload)-1:len(payload)-1], []byte(`,"dbgstat":"enabled"}`)...)
	token := s.sign(t, jose.RS256, dup, nil)
	_, err := verifyWith(t, GCP, token, setOf(t, s.jwks(t, "RS256")), nil)
	if !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("error %v, want a malformed duplicate-member error", err)
	}
}

func TestTokenInText(t *testing.T) {
	s := newService(t)
	token := s.sign(t, jose.RS256, gcpClaims(), nil)
	set := setOf(t, s.jwks(t, "RS256"))
	wrapped := "token: " + token + "\n(end of output)\n"
	if !GCP.Detect([]byte(wrapped)) {
		t.Error("token in text not detected")
	}
	if _, err := verifyWith(t, GCP, wrapped, set, nil); err != nil {
		t.Errorf("token in text: %v", err)
	}
	if _, err := verifyWith(t, GCP, token+"\n"+token, set, nil); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("two tokens: error %v, want malformed", err)
	}
}

func TestDetectByIssuer(t *testing.T) {
	s := newService(t)
	issuers := map[string]string{
		gcpIssuer: "gcp-token",
		"https://sharedeus2.eus2.attest.azure.net": "maa-token",
		"Intel Trust Authority":                    "ita-token",
		"https://portal.trustauthority.intel.com":  "ita-token",
	}
	for iss, want := range issuers {
		token := s.sign(t, jose.RS256, map[string]any{"iss": iss}, nil)
		v, err := attest.Detect([]byte(token))
		if err != nil || v.Name() != want {
			t.Errorf("iss %q: detected %v (%v), want %s", iss, v, err, want)
		}
	}
	for _, iss := range []string{"https://attest.azure.net", "https://evil.example/attest.azure.net", "http://x.attest.azure.net", "https://accounts.google.com"} {
		token := s.sign(t, jose.RS256, map[string]any{"iss": iss}, nil)
		if v, err := attest.Detect([]byte(token)); err == nil {
			t.Errorf("iss %q detected as %s", iss, v.Name())
		}
	}
}

func TestDetectReadsIssExactly(t *testing.T) {
	s := newService(t)
	maa := "https://sharedeus2.eus2.attest.azure.net"
	cases := []struct {
		name    string
		payload string
		want    string // empty when no format matches
	}{
		{"iss then ISS", `{"iss":"` + gcpIssuer + `","ISS":"` + maa + `"}`, "gcp-token"},
		{"ISS then iss", `{"ISS":"` + maa + `","iss":"` + gcpIssuer + `"}`, "gcp-token"},
		{"Iss only", `{"Iss":"` + gcpIssuer + `"}`, ""},
		{"iss in upper case", `{"iss":"` + strings.ToUpper(gcpIssuer) + `"}`, ""},
		{"iss null", `{"iss":null}`, ""},
		{"iss number", `{"iss":1}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := []byte(s.sign(t, jose.RS256, []byte(tc.payload), nil))
			for _, v := range []Verifier{GCP, MAA, ITA} {
				if got, want := v.Detect(token), v.Name() == tc.want; got != want {
					t.Errorf("%s.Detect = %v, want %v", v.Name(), got, want)
				}
			}
		})
	}
}

func maaClaims() map[string]any {
	return map[string]any{
		"iss": "https://sharedeus2.eus2.attest.azure.net", "iat": testNow.Unix(), "nbf": testNow.Unix(), "exp": testNow.Add(8 * time.Hour).Unix(),
		"x-ms-attestation-type": "azurevm",
		"x-ms-isolation-tee": map[string]any{
			"x-ms-attestation-type":           "sevsnpvm",
			"x-ms-compliance-status":          "azure-compliant-cvm",
			"x-ms-sevsnpvm-is-debuggable":     false,
			"x-ms-sevsnpvm-launchmeasurement": strings.Repeat("6a", 48),
			"x-ms-sevsnpvm-reportdata":        strings.Repeat("00", 64),
			"x-ms-sevsnpvm-hostdata":          strings.Repeat("00", 32),
			"x-ms-sevsnpvm-microcode-svn":     219,
			"x-ms-sevsnpvm-snpfw-svn":         24,
			"x-ms-sevsnpvm-bootloader-svn":    4,
			"x-ms-sevsnpvm-tee-svn":           0,
		},
		"x-ms-runtime": map[string]any{"client-payload": map[string]any{"nonce": base64.StdEncoding.EncodeToString([]byte("midnight-srs"))}},
	}
}

func TestMAAToken(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, "RS256"))
	c, err := verifyWith(t, MAA, s.sign(t, jose.RS256, maaClaims(), nil), set, []byte("midnight-srs"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := c.TCB.Component("microcode"); !ok || v != 219 {
		t.Errorf("microcode SVN %d, %v", v, ok)
	}
	if c.Measurement.String() != strings.Repeat("6a", 48) {
		t.Errorf("measurement %s", c.Measurement)
	}

	debug := maaClaims()
	debug["x-ms-isolation-tee"].(map[string]any)["x-ms-sevsnpvm-is-debuggable"] = true
	c, err = verifyWith(t, MAA, s.sign(t, jose.RS256, debug, nil), set, nil)
	if err != nil || !c.Debug {
		t.Errorf("debuggable VM: debug %v, error %v", c != nil && c.Debug, err)
	}

	// A direct SEV-SNP attestation carries the claims at the top level.
	direct := maaClaims()
	for k, v := range direct["x-ms-isolation-tee"].(map[string]any) {
		direct[k] = v
	}
	delete(direct, "x-ms-isolation-tee")
	if _, err := verifyWith(t, MAA, s.sign(t, jose.RS256, direct, nil), set, nil); err != nil {
		t.Errorf("top-level SEV-SNP claims: %v", err)
	}
}

func itaClaims(t testing.TB) map[string]any {
	t.Helper()
	val, iat, held := []byte("verifier nonce value"), []byte("2026-01-02 03:04:00 +0000 UTC"), []byte("attester held data")
	sum := sha512.Sum512(append(append(append([]byte{}, val...), iat...), held...))
	return map[string]any{
		"iss": itaIssuer, "iat": testNow.Unix(), "nbf": testNow.Unix(), "exp": testNow.Add(5 * time.Minute).Unix(),
		"attester_type": "TDX", "tdx_is_debuggable": false,
		"tdx_mrtd": strings.Repeat("5f", 48), "tdx_mrseam": strings.Repeat("2f", 48), "tdx_rtmr0": strings.Repeat("00", 48),
		"tdx_report_data":     hex.EncodeToString(sum[:]),
		"attester_tcb_status": "UpToDate", "attester_advisory_ids": []string{"INTEL-SA-00837"}, "attester_tcb_date": "2023-02-15T00:00:00Z",
		"attester_held_data": base64.StdEncoding.EncodeToString(held),
		"verifier_nonce": map[string]any{
			"val": base64.StdEncoding.EncodeToString(val), "iat": base64.StdEncoding.EncodeToString(iat), "signature": "c2ln",
		},
	}
}

func TestITAToken(t *testing.T) {
	s := newService(t).withChain(t)
	set := setOf(t, s.jwks(t, "PS384"), s.chain[2].Raw)
	c, err := verifyWith(t, ITA, s.sign(t, jose.PS384, itaClaims(t), nil), set, []byte("verifier nonce value"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TCB.Status != attest.TCBUpToDate || c.TCB.Date == nil || c.Measurement.String() != strings.Repeat("5f", 48) {
		t.Errorf("TCB %+v, measurement %s", c.TCB, c.Measurement)
	}
	if c.TrustAnchor.Kind != attest.AnchorCallerRoot {
		t.Errorf("trust anchor kind %s, want caller-root", c.TrustAnchor.Kind)
	}

	// The report data must bind the verifier nonce.
	unbound := itaClaims(t)
	unbound["tdx_report_data"] = strings.Repeat("00", 64)
	if _, err := verifyWith(t, ITA, s.sign(t, jose.PS384, unbound, nil), set, nil); !errors.Is(err, attest.ErrBinding) {
		t.Errorf("unbound report data: error %v, want a binding error", err)
	}
}

func TestITAKeyChain(t *testing.T) {
	s := newService(t).withChain(t)
	token := s.sign(t, jose.PS384, itaClaims(t), nil)

	if _, err := verifyWith(t, ITA, token, setOf(t, s.jwks(t, "PS384")), nil); !errors.Is(err, attest.ErrCollateralMissing) {
		t.Errorf("no root: error %v, want collateral missing", err)
	}
	other := newService(t).withChain(t)
	if _, err := verifyWith(t, ITA, token, setOf(t, s.jwks(t, "PS384"), other.chain[2].Raw), nil); !errors.Is(err, attest.ErrChain) {
		t.Errorf("another root: error %v, want a chain error", err)
	}
	bare := &testService{key: s.key, kid: s.kid}
	if _, err := verifyWith(t, ITA, token, setOf(t, bare.jwks(t, "PS384"), s.chain[2].Raw), nil); !errors.Is(err, attest.ErrChain) {
		t.Errorf("key without x5c: error %v, want a chain error", err)
	}
}

func TestITAOutOfDate(t *testing.T) {
	s := newService(t).withChain(t)
	claims := itaClaims(t)
	claims["attester_tcb_status"] = "OutOfDate"
	opts := attest.Options{At: testNow, Collateral: setOf(t, s.jwks(t, "PS384"), s.chain[2].Raw)}
	res := appraise.Evaluate(context.Background(), attest.Evidence{Data: []byte(s.sign(t, jose.PS384, claims, nil))}, opts, appraise.Options{})
	if res.Verdict != appraise.Reject || !strings.Contains(res.Error.Error(), "out of date") {
		t.Errorf("verdict %s (%v), want an out-of-date rejection", res.Verdict, res.Error)
	}
}

func TestRandomInput(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, ""))
	for i := range 300 {
		data := make([]byte, i%200)
		rand.Read(data)
		if i%2 == 0 {
			data = []byte("eyJ" + base64.RawURLEncoding.EncodeToString(data) + "." + base64.RawURLEncoding.EncodeToString(data) + ".c2ln")
		}
		for _, v := range []Verifier{GCP, MAA, ITA} {
			v.Detect(data)
			if _, err := v.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{At: testNow, Collateral: set}); err == nil {
				t.Fatalf("%s accepted random input %q", v.Name(), data)
			}
		}
	}
}

func TestZeroVerifier(t *testing.T) {
	var v Verifier
	s := newService(t)
	token := s.sign(t, jose.RS256, gcpClaims(), nil)
	if v.Detect([]byte(token)) {
		t.Error("zero verifier detected a token")
	}
	if _, err := v.Verify(context.Background(), attest.Evidence{Data: []byte(token)}, attest.Options{}); !errors.Is(err, attest.ErrUnsupported) {
		t.Errorf("error %v, want unsupported", err)
	}
	if _, err := v.Inspect([]byte(token)); err == nil {
		t.Error("zero verifier inspected a token")
	}
}
