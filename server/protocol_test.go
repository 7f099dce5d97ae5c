package server

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/tee/dcap"
)

// Guests may use P-521 or RSA TEE keys; the JWE follows the key type.
func TestReleaseToEachKeyType(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	for _, keyType := range []string{"P-256", "P-521", "RSA"} {
		c := ts.newClient(t, "good")
		c.KeyType = keyType
		got, err := c.Resource(context.Background(), testSecretPath)
		if err != nil {
			t.Errorf("%s: %v", keyType, err)
			continue
		}
		if !bytes.Equal(got, testSecret) {
			t.Errorf("%s: secret = %q", keyType, got)
		}
	}
}

func TestInitDataBinding(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	ctx := context.Background()
	initData := &kbs.InitData{Format: "toml", Body: testInitData}

	bound := ts.newClient(t, "initdata")
	bound.InitData = initData
	if _, err := bound.Resource(ctx, testSecretPath); err != nil {
		t.Errorf("init data matching HOST_DATA: %v", err)
	}

	changed := ts.newClient(t, "initdata")
	changed.InitData = &kbs.InitData{Format: "toml", Body: strings.Replace(testInitData, "agent_policy", "other", 1)}
	_, err := changed.Attest(ctx)
	wantProblem(t, err, kbs.ProblemAttestationError, http.StatusUnauthorized)

	unbound := ts.newClient(t, "good")
	unbound.InitData = initData
	_, err = unbound.Attest(ctx)
	wantProblem(t, err, kbs.ProblemAttestationError, http.StatusUnauthorized)

	json := ts.newClient(t, "initdata")
	json.InitData = &kbs.InitData{Format: "json", Body: testInitData}
	_, err = json.Attest(ctx)
	wantProblem(t, err, kbs.ProblemAttestationError, http.StatusUnauthorized)
}

// The composite vector (sample TEE plus a sample device) is accepted for
// a session with the vector's nonce, and the token has one submodule for
// each.
func TestCompositeVector(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := os.Getenv("CLOISTER_KBS_VECTORS")
		if dir == "" {
			dir = filepath.Join("..", "..", "shared", "protocols", "kbs-vectors")
		}
		data, err := os.ReadFile(filepath.Join(dir, "cloister_composite-sampledevice.json"))
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal(err)
			}
			t.Skipf("KBS vectors not found: %v", err)
		}
		var v struct {
			RuntimeData kbs.RuntimeData `json:"runtime_data"`
			Body        string          `json:"attest_request_body_bytes"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}

		ts := startService(t, b, serviceOptions{allowEmulated: true})
		jar := sampleSession(t, ts, "0123456789abcdef0123456789abcdef", v.RuntimeData.Nonce)
		resp := post(t, ts, jar, "/kbs/v0/attest", v.Body)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("attest: %s %s", resp.Status, body)
		}
		var tok kbs.AttestationToken
		if err := json.Unmarshal(body, &tok); err != nil {
			t.Fatal(err)
		}
		claims := unverifiedClaims(t, tok.Token)
		submods, _ := claims["submods"].(map[string]any)
		for _, name := range []string{"cpu0", "gpu0"} {
			if submods[name] == nil {
				t.Errorf("token lacks submodule %s; has %v", name, submods)
			}
		}

		// A device report that does not bind the device runtime data fails
		// the whole attestation, even when the primary evidence binds the
		// additional_evidence string correctly.
		wrongDevice := sampleDeviceEvidence(make([]byte, 48))
		nonce := "c2Vjb25kIHNlc3Npb24gbm9uY2U="
		jar2 := sampleSession(t, ts, "fedcba9876543210fedcba9876543210", nonce)
		digest, err := kbs.PrimaryDigest(kbs.SHA384, nonce, v.RuntimeData.TEEPubKey, wrongDevice)
		if err != nil {
			t.Fatal(err)
		}
		primary, _ := json.Marshal(map[string]string{"svn": "1", "report_data": base64.StdEncoding.EncodeToString(digest)})
		forged, _ := json.Marshal(kbs.Attestation{RuntimeData: kbs.RuntimeData{Nonce: nonce, TEEPubKey: v.RuntimeData.TEEPubKey},
			TEEEvidence: kbs.TEEEvidence{PrimaryEvidence: primary, AdditionalEvidence: wrongDevice}})
		resp = post(t, ts, jar2, "/kbs/v0/attest", string(forged))
		wantProblemResponse(t, resp, kbs.ProblemAttestationError, http.StatusUnauthorized)

		// The same body with the correct device report data is accepted,
		// so the rejection above was the device binding.
		nonce = "dGhpcmQgc2Vzc2lvbiBub25jZQ=="
		jar3 := sampleSession(t, ts, "00112233445566778899aabbccddeeff", nonce)
		deviceDigest, _ := kbs.DeviceDigest(kbs.SHA384, nonce, v.RuntimeData.TEEPubKey)
		rightDevice := sampleDeviceEvidence(deviceDigest)
		digest, _ = kbs.PrimaryDigest(kbs.SHA384, nonce, v.RuntimeData.TEEPubKey, rightDevice)
		primary, _ = json.Marshal(map[string]string{"svn": "1", "report_data": base64.StdEncoding.EncodeToString(digest)})
		good, _ := json.Marshal(kbs.Attestation{RuntimeData: kbs.RuntimeData{Nonce: nonce, TEEPubKey: v.RuntimeData.TEEPubKey},
			TEEEvidence: kbs.TEEEvidence{PrimaryEvidence: primary, AdditionalEvidence: rightDevice}})
		resp = post(t, ts, jar3, "/kbs/v0/attest", string(good))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("composite body with a bound device: %s", resp.Status)
		}
	})
}

// startTDXService starts a service that trusts a new emulated TDX guest,
// with its collateral and its MRTD as the reference measurement, and
// returns both.
func startTDXService(t *testing.T) (*testService, *dcap.Emulator) {
	t.Helper()
	return startTDXServiceWith(t, serviceOptions{})
}

// startTDXServiceWith is startTDXService with the options o, to which it
// adds the emulated guest's root and collateral.
func startTDXServiceWith(t *testing.T, o serviceOptions) (*testService, *dcap.Emulator) {
	t.Helper()
	em, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	coll := em.Collateral()
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "test", Raw: em.Root().Raw, Certificate: em.Root()})
	o.allowEmulated = true
	o.anchors = append(o.anchors, em.Root())
	o.collateral = coll
	ts := startService(t, backends(t)[0], o)
	ctx := context.Background()

	probe, err := em.Attest(ctx, make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := attest.Verify(ctx, *probe, attest.Options{Collateral: coll, TrustAnchors: anchors})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.store.AddReferenceValue(ctx, store.ReferenceValue{Name: "tdx.measurement", Value: claims.Measurement.String()}); err != nil {
		t.Fatal(err)
	}
	return ts, em
}

// A TDX guest that sends the Trustee attester's JSON ({"cc_eventlog",
// "quote"}) gets the secret, with emulated DCAP evidence and collateral.
func TestTDXGuestJSON(t *testing.T) {
	ts, em := startTDXService(t)
	jar, _ := cookiejar.New(nil)
	key, _ := attestTDXJSON(t, ts, em, jar)

	wantSecret(t, getWithJar(t, ts, jar, "/kbs/v0/resource/"+testSecretPath), key)
}

// attestTDXJSON runs /auth and /attest for em as the Trustee attester does,
// with the quote in its JSON ({"cc_eventlog", "quote"}), and fails the test
// unless /attest responds 200. It returns the TEE key and that response,
// and jar keeps the session cookie.
func attestTDXJSON(t *testing.T, ts *testService, em *dcap.Emulator, jar http.CookieJar) (crypto.PrivateKey, *http.Response) {
	t.Helper()
	resp := post(t, ts, jar, "/kbs/v0/auth", `{"version":"0.4.0","tee":"tdx","extra-params":{"supported-hash-algorithms":["sha384"]}}`)
	var ch kbs.Challenge
	if err := json.NewDecoder(resp.Body).Decode(&ch); err != nil {
		t.Fatal(err)
	}
	key, _ := kbs.GenerateKey("P-256")
	pub, _ := kbs.PublicKeyJWK(key)
	digest, _ := kbs.PrimaryDigest(kbs.DefaultHash, ch.Nonce, pub, "")
	ev, err := em.Attest(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	primary, _ := json.Marshal(map[string]any{"cc_eventlog": nil, "quote": base64.StdEncoding.EncodeToString(ev.Data)})
	body, _ := json.Marshal(kbs.Attestation{RuntimeData: kbs.RuntimeData{Nonce: ch.Nonce, TEEPubKey: pub},
		TEEEvidence: kbs.TEEEvidence{PrimaryEvidence: primary}})
	resp = post(t, ts, jar, "/kbs/v0/attest", string(body))
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("attest: %s %s", resp.Status, b)
	}
	return key, resp
}

// An emulated TDX guest that attests through the KBS client sends its CC
// event log, so the token's TDX claims show the event-log check passed
// and list the replayed events.
func TestTDXGuestEventLogThroughClient(t *testing.T) {
	ts, em := startTDXService(t)
	client := newKBSClient(ts.URL, ts.Client().Transport, em)
	token, err := client.Attest(context.Background())
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}

	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("the token has %d parts, expected a JWS of 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var result struct {
		Submods map[string]struct {
			Status    string `json:"ear.status"`
			Annotated struct {
				TDX attest.Claims `json:"tdx"`
			} `json:"ear.veraison.annotated-evidence"`
		} `json:"submods"`
	}
	if err := json.Unmarshal(payload, &result); err != nil {
		t.Fatal(err)
	}
	cpu0, ok := result.Submods["cpu0"]
	if !ok {
		t.Fatalf("the token has no cpu0 submod: %s", payload)
	}
	if cpu0.Status != "affirming" {
		t.Errorf("ear.status %s, expected affirming", cpu0.Status)
	}
	if check, _ := cpu0.Annotated.TDX.FindCheck("event-log"); check.Result != attest.CheckPassed {
		t.Errorf("event-log check %q (%s), expected passed", check.Result, check.Detail)
	}
	if events, _ := cpu0.Annotated.TDX.Attributes["event_log"].([]any); len(events) == 0 {
		t.Errorf("attributes.event_log is %v, expected the replayed events", cpu0.Annotated.TDX.Attributes["event_log"])
	}

	secret, err := client.Resource(context.Background(), testSecretPath)
	if err != nil {
		t.Fatalf("Resource: %v", err)
	}
	if !bytes.Equal(secret, testSecret) {
		t.Errorf("secret %q, expected %q", secret, testSecret)
	}
}

// The error bodies match the vector's examples exactly: status, type and
// detail, which guests parse.
func TestErrorBodiesMatchVector(t *testing.T) {
	dir := os.Getenv("CLOISTER_KBS_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "protocols", "kbs-vectors")
	}
	data, err := os.ReadFile(filepath.Join(dir, "cloister_error-responses.json"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("KBS vectors not found: %v", err)
	}
	var v struct {
		Examples []struct {
			Status int         `json:"status"`
			Body   kbs.Problem `json:"body"`
		} `json:"examples"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	want := map[kbs.Problem]bool{}
	for _, e := range v.Examples {
		want[kbs.Problem{Type: e.Body.Type, Detail: e.Body.Detail, Status: e.Status}] = true
	}

	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	ctx := context.Background()
	var got []*kbs.Problem
	read := func(resp *http.Response) {
		body, _ := io.ReadAll(resp.Body)
		p, err := kbs.ParseProblem(resp.StatusCode, body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	read(post(t, ts, nil, "/kbs/v0/auth", `{"version":"0.3.0","tee":"snp","extra-params":""}`))
	read(post(t, ts, nil, "/kbs/v0/attest", `{}`))
	read(get(t, ts, "/kbs/v0/resource/default/key/1", ""))
	read(get(t, ts, "/kbs/v0/unknown/x", ""))
	for _, c := range []struct{ emulator, path string }{{"unknown", testSecretPath}, {"good", "default/key/1"}} {
		_, err := ts.newClient(t, c.emulator).Resource(ctx, c.path)
		var p *kbs.Problem
		if !errors.As(err, &p) {
			t.Fatalf("%s %s: %v", c.emulator, c.path, err)
		}
		got = append(got, p)
	}

	if len(got) != len(want) {
		t.Fatalf("checked %d problems, the vector has %d", len(got), len(want))
	}
	for _, p := range got {
		if !want[*p] {
			t.Errorf("problem %s (HTTP %d, detail %q) is not one of the vector's bodies", p.Type, p.Status, p.Detail)
		}
	}
}
