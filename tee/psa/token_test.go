package psa

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	gocose "github.com/veraison/go-cose"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// testDevice is a generated IAK with the instance ID TF-M derives from it.
type testDevice struct {
	key        *ecdsa.PrivateKey
	instanceID []byte
}

func newDevice(t *testing.T) testDevice {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	point, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(point)
	return testDevice{key: key, instanceID: append([]byte{0x01}, sum[:]...)}
}

// claims2 returns a valid PSA 2.0 claims set for d.
func (d testDevice) claims2() map[int64]any {
	return map[int64]any{
		265:  ProfilePSA2,
		2394: int64(-1),
		2395: int64(0x3000),
		2396: bytes.Repeat([]byte{0xaa}, 32),
		256:  d.instanceID,
		10:   bytes.Repeat([]byte{0x11}, 32),
		268:  bytes.Repeat([]byte{0x22}, 8),
		2399: []map[int64]any{{1: "BL", 2: bytes.Repeat([]byte{0x33}, 32), 5: bytes.Repeat([]byte{0x44}, 32)}},
	}
}

// claims1 returns a valid legacy PSA 1.0 claims set for d.
func (d testDevice) claims1() map[int64]any {
	return map[int64]any{
		-75000: ProfilePSA1,
		-75001: int64(1),
		-75002: int64(0x3000),
		-75003: bytes.Repeat([]byte{0xaa}, 32),
		-75009: d.instanceID,
		-75008: bytes.Repeat([]byte{0x11}, 64),
		-75004: bytes.Repeat([]byte{0x22}, 32),
		-75006: []map[int64]any{{1: "SPE", 2: bytes.Repeat([]byte{0x33}, 32), 5: bytes.Repeat([]byte{0x44}, 32)}},
	}
}

// keySet returns a collateral set holding the public keys as DER SPKI.
func keySet(t *testing.T, keys ...*ecdsa.PrivateKey) *collateral.Set {
	t.Helper()
	set := &collateral.Set{}
	for i, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if n, reason := set.AddBytes("key"+string(rune('0'+i)), der); n != 1 {
			t.Fatal(reason)
		}
	}
	return set
}

func verify(t *testing.T, token []byte, set *collateral.Set) (*attest.Claims, error) {
	t.Helper()
	return (Verifier{}).Verify(context.Background(), attest.Evidence{Data: token}, attest.Options{Collateral: set})
}

func TestProfiles(t *testing.T) {
	d := newDevice(t)
	draft := d.claims2()
	draft[265] = ProfilePSA2Draft
	draft[2397] = draft[268]
	delete(draft, 268)
	cases := []struct {
		name    string
		claims  map[int64]any
		profile string
	}{
		{"psa 2.0", d.claims2(), ProfilePSA2},
		{"psa 2.0 draft", draft, ProfilePSA2Draft},
		{"psa 1.0", d.claims1(), ProfilePSA1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, testcert.CBOR(t, tc.claims), true)
			c, err := verify(t, token, keySet(t, d.key))
			if err != nil {
				t.Fatal(err)
			}
			if c.Attributes["profile"] != tc.profile {
				t.Errorf("profile %v, want %s", c.Attributes["profile"], tc.profile)
			}
			if c.TrustAnchor.TestKey {
				t.Error("generated key marked as a published test key")
			}
			if !(Verifier{}).Detect(token) {
				t.Error("not detected")
			}
		})
	}
}

func TestUntaggedToken(t *testing.T) {
	d := newDevice(t)
	token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, testcert.CBOR(t, d.claims2()), false)
	if _, err := verify(t, token, keySet(t, d.key)); err != nil {
		t.Fatal(err)
	}
}

func TestLifecycleDebug(t *testing.T) {
	d := newDevice(t)
	cases := []struct {
		lifecycle int64
		debug     bool
	}{
		{0x3000, false}, {0x30ff, false}, {0x4000, true}, {0x40ff, true},
		{0x5000, true}, {0x5001, true}, {0x6000, false}, {0x2000, false},
	}
	for _, tc := range cases {
		claims := d.claims2()
		claims[2395] = tc.lifecycle
		token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, testcert.CBOR(t, claims), true)
		c, err := verify(t, token, keySet(t, d.key))
		if err != nil {
			t.Fatalf("lifecycle %#x: %v", tc.lifecycle, err)
		}
		if c.Debug != tc.debug {
			t.Errorf("lifecycle %#x: debug %v, want %v", tc.lifecycle, c.Debug, tc.debug)
		}
	}
}

// A lifecycle before or after deployment fails a check, so that the
// default appraisal rejects the token; secured and debug states pass it.
func TestLifecycleCheck(t *testing.T) {
	d := newDevice(t)
	for lifecycle, want := range map[int64]attest.CheckResult{
		0x3000: attest.CheckPassed, 0x4000: attest.CheckPassed, 0x5000: attest.CheckPassed,
		0x0000: attest.CheckFailed, 0x1000: attest.CheckFailed, 0x2000: attest.CheckFailed, 0x6000: attest.CheckFailed,
	} {
		claims := d.claims2()
		claims[2395] = lifecycle
		token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, testcert.CBOR(t, claims), true)
		c, err := verify(t, token, keySet(t, d.key))
		if err != nil {
			t.Fatalf("lifecycle %#x: %v", lifecycle, err)
		}
		var got attest.CheckResult
		for _, ch := range c.Checks {
			if ch.Name == "security-lifecycle" {
				got = ch.Result
			}
		}
		if got != want {
			t.Errorf("lifecycle %#x: security-lifecycle check %q, want %q", lifecycle, got, want)
		}
		accepted := appraise.Appraise(c, appraise.Options{}).Accepted
		if want == attest.CheckFailed && accepted {
			t.Errorf("lifecycle %#x: the default appraisal accepted the token", lifecycle)
		}
		if lifecycle == 0x3000 && !accepted {
			t.Errorf("lifecycle %#x: the default appraisal rejected a secured token", lifecycle)
		}
	}
}

func TestDebugAppraisal(t *testing.T) {
	d := newDevice(t)
	claims := d.claims2()
	claims[2395] = int64(0x4000)
	token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, testcert.CBOR(t, claims), true)
	opts := attest.Options{Collateral: keySet(t, d.key)}
	res := appraise.Evaluate(context.Background(), attest.Evidence{Data: token}, opts, appraise.Options{})
	if res.Verdict != appraise.Reject || !strings.Contains(res.Error.Error(), "debug") {
		t.Errorf("verdict %s (%v), want a debug rejection", res.Verdict, res.Error)
	}
	res = appraise.Evaluate(context.Background(), attest.Evidence{Data: token}, opts, appraise.Options{AllowDebug: true})
	if res.Verdict != appraise.Accept {
		t.Errorf("verdict with debug allowed %s (%v), want accept", res.Verdict, res.Error)
	}
}

func TestMalformedClaims(t *testing.T) {
	d := newDevice(t)
	cases := []struct {
		name   string
		edit   func(map[int64]any)
		reason string
	}{
		{"no profile", func(m map[int64]any) { delete(m, 265) }, "profile"},
		{"unknown profile", func(m map[int64]any) { m[265] = "http://example.com/other" }, "not a PSA profile"},
		{"no client id", func(m map[int64]any) { delete(m, 2394) }, "client ID"},
		{"no lifecycle", func(m map[int64]any) { delete(m, 2395) }, "security lifecycle"},
		{"undefined lifecycle", func(m map[int64]any) { m[2395] = int64(0x7000) }, "not a defined state"},
		{"short implementation id", func(m map[int64]any) { m[2396] = make([]byte, 31) }, "implementation ID is 31 bytes"},
		{"instance id type", func(m map[int64]any) { m[256] = append([]byte{0x02}, make([]byte, 32)...) }, "instance ID"},
		{"short nonce", func(m map[int64]any) { m[10] = make([]byte, 16) }, "nonce is 16 bytes"},
		{"nonce as text", func(m map[int64]any) { m[10] = strings.Repeat("a", 32) }, "nonce"},
		{"no nonce", func(m map[int64]any) { delete(m, 10) }, "nonce claim (10) missing"},
		{"no software", func(m map[int64]any) { delete(m, 2399) }, "software components"},
		{"empty software", func(m map[int64]any) { m[2399] = []any{} }, "empty"},
		{"no signer id", func(m map[int64]any) {
			m[2399] = []map[int64]any{{1: "BL", 2: make([]byte, 32)}}
		}, "signer ID"},
		{"short boot seed", func(m map[int64]any) { m[268] = make([]byte, 4) }, "boot seed"},
		{"both boot seeds", func(m map[int64]any) { m[2397] = bytes.Repeat([]byte{0x23}, 8) }, "both boot seed claims"},
		{"zero client id", func(m map[int64]any) { m[2394] = int64(0) }, "client ID 0"},
		{"64-bit client id", func(m map[int64]any) { m[2394] = int64(1) << 31 }, "client ID 2147483648"},
		{"negative 64-bit client id", func(m map[int64]any) { m[2394] = -(int64(1) << 31) - 1 }, "client ID -2147483649"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := d.claims2()
			tc.edit(claims)
			expectMalformed(t, d, claims, tc.reason)
		})
	}
}

// expectMalformed signs claims with the device key and checks that
// verification rejects the token as malformed with reason in the error.
func expectMalformed(t *testing.T, d testDevice, claims map[int64]any, reason string) {
	t.Helper()
	token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, testcert.CBOR(t, claims), true)
	_, err := verify(t, token, keySet(t, d.key))
	if !errors.Is(err, attest.ErrMalformed) {
		t.Fatalf("error %v, want malformed", err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q does not name %q", err, reason)
	}
}

func TestMalformedClaimsPSA1(t *testing.T) {
	d := newDevice(t)
	cases := []struct {
		name   string
		edit   func(map[int64]any)
		reason string
	}{
		{"no boot seed", func(m map[int64]any) { delete(m, -75004) }, "boot seed claim (-75004) missing"},
		{"short boot seed", func(m map[int64]any) { m[-75004] = make([]byte, 16) }, "boot seed is 16 bytes"},
		{"zero client id", func(m map[int64]any) { m[-75001] = int64(0) }, "client ID 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := d.claims1()
			tc.edit(claims)
			expectMalformed(t, d, claims, tc.reason)
		})
	}
}

func TestDuplicateClaimKey(t *testing.T) {
	d := newDevice(t)
	payload := testcert.CBOR(t, d.claims2())
	if payload[0] < 0xa0 || payload[0] >= 0xb7 {
		t.Fatalf("unexpected map header %#x", payload[0])
	}
	dup := append([]byte{payload[0] + 1}, payload[1:]...)
	dup = append(dup, testcert.CBOR(t, int64(10))...)
	dup = append(dup, testcert.CBOR(t, bytes.Repeat([]byte{0x99}, 32))...)
	token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, dup, true)
	_, err := verify(t, token, keySet(t, d.key))
	if !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("error %v, want a malformed duplicate-key error", err)
	}
}

func TestTrailingPayloadBytes(t *testing.T) {
	d := newDevice(t)
	payload := append(testcert.CBOR(t, d.claims2()), 0x00)
	token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, payload, true)
	if _, err := verify(t, token, keySet(t, d.key)); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("error %v, want malformed", err)
	}
}

func TestAlgorithmMismatch(t *testing.T) {
	d := newDevice(t)
	// An ES384 header over a P-256 key: the allow-list ties ES384 to
	// P-384, so the token must not verify.
	token := testcert.Sign1(t, d.key, gocose.AlgorithmES384, testcert.CBOR(t, d.claims2()), true)
	if _, err := verify(t, token, keySet(t, d.key)); !errors.Is(err, attest.ErrSignature) {
		t.Errorf("error %v, want a signature error", err)
	}
}

func TestUnsupportedAlgorithm(t *testing.T) {
	d := newDevice(t)
	msg := gocose.Sign1Message{
		Headers:   gocose.Headers{Protected: gocose.ProtectedHeader{gocose.HeaderLabelAlgorithm: gocose.Algorithm(5)}},
		Payload:   testcert.CBOR(t, d.claims2()),
		Signature: make([]byte, 32),
	}
	token, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, token, keySet(t, d.key)); err == nil {
		t.Error("token with an HMAC algorithm accepted")
	}
}

func TestWrongKey(t *testing.T) {
	d, other := newDevice(t), newDevice(t)
	token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, testcert.CBOR(t, d.claims2()), true)
	_, err := verify(t, token, keySet(t, other.key))
	if !errors.Is(err, attest.ErrSignature) {
		t.Errorf("error %v, want a signature error", err)
	}
}

func TestInstanceIDBinding(t *testing.T) {
	d, other := newDevice(t), newDevice(t)
	token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, testcert.CBOR(t, d.claims2()), true)

	c, err := verify(t, token, keySet(t, other.key, d.key))
	if err != nil {
		t.Fatal(err)
	}
	if c.TrustAnchor.Name != "key1" {
		t.Errorf("trust anchor %q, want the bound key key1", c.TrustAnchor.Name)
	}
	if ch, _ := c.FindCheck("iak-bound-to-instance-id"); ch.Result != attest.CheckPassed {
		t.Error("binding check not recorded as passed")
	}

	// A token whose instance ID matches no key verifies under whichever
	// supplied key signed it, with a warning.
	claims := d.claims2()
	claims[256] = append([]byte{0x01}, bytes.Repeat([]byte{0x02}, 32)...)
	token = testcert.Sign1(t, d.key, gocose.AlgorithmES256, testcert.CBOR(t, claims), true)
	c, err = verify(t, token, keySet(t, other.key, d.key))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) == 0 {
		t.Error("no warning for a key not bound to the instance ID")
	}

	// A bound key that does not verify is not replaced by another key.
	token = testcert.Sign1(t, other.key, gocose.AlgorithmES256, testcert.CBOR(t, d.claims2()), true)
	if _, err := verify(t, token, keySet(t, other.key, d.key)); !errors.Is(err, attest.ErrSignature) {
		t.Errorf("error %v, want a signature error under the bound key", err)
	}
}

func TestJWKBoundByKeyID(t *testing.T) {
	d := newDevice(t)
	claims := d.claims2()
	claims[256] = append([]byte{0x01}, bytes.Repeat([]byte{0x05}, 32)...)
	token := testcert.Sign1(t, d.key, gocose.AlgorithmES256, testcert.CBOR(t, claims), true)
	jwk := jose.JSONWebKey{Key: &d.key.PublicKey, KeyID: hex.EncodeToString(claims[256].([]byte)), Algorithm: "ES256"}
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		t.Fatal(err)
	}
	set := &collateral.Set{}
	set.AddBytes("iak.jwks.json", raw)
	c, err := verify(t, token, set)
	if err != nil {
		t.Fatal(err)
	}
	if ch, _ := c.FindCheck("iak-bound-to-instance-id"); ch.Result != attest.CheckPassed {
		t.Error("JWK kid binding not recorded")
	}
}

func TestRandomInput(t *testing.T) {
	d := newDevice(t)
	set := keySet(t, d.key)
	for i := range 500 {
		data := make([]byte, i%300)
		rand.Read(data)
		if i%2 == 0 && len(data) > 2 {
			data[0], data[1] = 0xd2, 0x84
		}
		(Verifier{}).Detect(data)
		if _, err := verify(t, data, set); err == nil {
			t.Fatalf("random input %x accepted", data)
		}
	}
}
