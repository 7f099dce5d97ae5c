package cca

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-jose/go-jose/v4"
	gocose "github.com/veraison/go-cose"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// testPlatform holds generated CPAK and RAK keys and the claims of a token
// that the tests edit before building it.
type testPlatform struct {
	cpak, rak *ecdsa.PrivateKey
	realm     map[int64]any
	platform  map[int64]any
	// coseKeyRAK encodes the RAK claim as a COSE_Key instead of a raw
	// point.
	coseKeyRAK bool
}

func newPlatform(t *testing.T) *testPlatform {
	t.Helper()
	cpak := testcert.ECDSAKey(t, elliptic.P384())
	rak := testcert.ECDSAKey(t, elliptic.P384())
	zero := make([]byte, 32)
	p := &testPlatform{cpak: cpak, rak: rak}
	p.realm = map[int64]any{
		claimChallenge:          bytes.Repeat([]byte{0xab}, 64),
		claimProfile:            ProfileRealm,
		claimPersonalization:    bytes.Repeat([]byte{0x50}, 64),
		claimRealmHashAlgorithm: "sha-256",
		claimRIM:                bytes.Repeat([]byte{0x01}, 32),
		claimREMs:               [][]byte{zero, zero, zero, bytes.Repeat([]byte{0x03}, 32)},
		claimRAKHashAlgorithm:   "sha-256",
	}
	p.platform = map[int64]any{
		claimProfile:               ProfilePlatform,
		claimImplementationID:      bytes.Repeat([]byte{0x7f}, 32),
		claimInstanceID:            append([]byte{0x01}, bytes.Repeat([]byte{0x07}, 32)...),
		claimPlatformConfig:        []byte{0x01, 0x02},
		claimLifecycle:             int64(0x3003),
		claimPlatformHashAlgorithm: "sha-256",
		claimVerificationService:   "https://veraison.example",
		claimSoftwareComponents: []map[int64]any{
			{1: "BL", 2: bytes.Repeat([]byte{0x0b}, 32), 4: "1.0", 5: bytes.Repeat([]byte{0x0c}, 32), 6: "sha-256"},
		},
	}
	return p
}

// rakClaim returns the encoded RAK claim.
func (p *testPlatform) rakClaim(t *testing.T) []byte {
	t.Helper()
	if p.coseKeyRAK {
		key, err := gocose.NewKeyFromPublic(&p.rak.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		b, err := key.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	point, err := p.rak.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return point
}

// build signs both tokens and wraps them in the tag 399 collection. The
// platform challenge is the SHA-256 of the RAK claim unless the test set
// one.
func (p *testPlatform) build(t *testing.T) []byte {
	t.Helper()
	rakClaim := p.rakClaim(t)
	if _, ok := p.realm[claimRealmPublicKey]; !ok {
		p.realm[claimRealmPublicKey] = rakClaim
	}
	if _, ok := p.platform[claimChallenge]; !ok {
		sum := sha256.Sum256(rakClaim)
		p.platform[claimChallenge] = sum[:]
	}
	realm := signToken(t, p.rak, gocose.AlgorithmES384, p.realm)
	platform := signToken(t, p.cpak, gocose.AlgorithmES384, p.platform)
	out, err := cbor.Marshal(cbor.Tag{Number: collectionTag, Content: map[int64][]byte{platformTokenKey: platform, realmDelegatedKey: realm}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func signToken(t *testing.T, key *ecdsa.PrivateKey, alg gocose.Algorithm, claims map[int64]any) []byte {
	t.Helper()
	return testcert.Sign1(t, key, alg, testcert.CBOR(t, claims), true)
}

func (p *testPlatform) keys(t *testing.T) *collateral.Set {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&p.cpak.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	set := &collateral.Set{}
	set.AddBytes("cpak.der", der)
	return set
}

func (p *testPlatform) verify(t *testing.T, token []byte, nonce []byte) (*attest.Claims, error) {
	t.Helper()
	return (Verifier{}).Verify(context.Background(), attest.Evidence{Data: token}, attest.Options{Collateral: p.keys(t), Nonce: nonce})
}

func TestBuiltToken(t *testing.T) {
	for _, coseKey := range []bool{false, true} {
		p := newPlatform(t)
		p.coseKeyRAK = coseKey
		token := p.build(t)
		c, err := p.verify(t, token, nil)
		if err != nil {
			t.Fatalf("COSE_Key RAK %v: %v", coseKey, err)
		}
		if c.Measurement.String() != strings.Repeat("01", 32) {
			t.Errorf("measurement %s, want the RIM", c.Measurement)
		}
		if c.Measurements["rem3"].String() != strings.Repeat("03", 32) {
			t.Errorf("rem3 %s", c.Measurements["rem3"])
		}
		if c.Debug {
			t.Error("secured lifecycle reported as debug")
		}
		if c.ReportData.String() != strings.Repeat("ab", 64) {
			t.Errorf("report data %s, want the realm challenge", c.ReportData)
		}
		if c.TrustAnchor.TestKey {
			t.Error("generated CPAK marked as a published test key")
		}
		if !(Verifier{}).Detect(token) {
			t.Error("not detected")
		}
	}
}

func TestSHA512RAKHash(t *testing.T) {
	p := newPlatform(t)
	p.realm[claimRAKHashAlgorithm] = "sha-512"
	sum := sha512.Sum512(p.rakClaim(t))
	p.platform[claimChallenge] = sum[:]
	if _, err := p.verify(t, p.build(t), nil); err != nil {
		t.Fatal(err)
	}
}

func TestRAKBindingMismatch(t *testing.T) {
	p := newPlatform(t)
	p.platform[claimChallenge] = bytes.Repeat([]byte{0xee}, 32)
	c, err := p.verify(t, p.build(t), nil)
	if !errors.Is(err, attest.ErrBinding) {
		t.Fatalf("error %v, want a binding error", err)
	}
	if c == nil {
		t.Error("no claims returned with the binding error")
	}
}

func TestChallengePadding(t *testing.T) {
	p := newPlatform(t)
	nonce := bytes.Repeat([]byte{0x5a}, 32)
	p.realm[claimChallenge] = append(bytes.Clone(nonce), make([]byte, 32)...)
	token := p.build(t)
	if _, err := p.verify(t, token, nonce); err != nil {
		t.Errorf("32-byte nonce, zero-padded in the token: %v", err)
	}
	other := bytes.Clone(nonce)
	other[0] ^= 1
	if _, err := p.verify(t, token, other); !errors.Is(err, attest.ErrBinding) {
		t.Errorf("different nonce: error %v, want a binding error", err)
	}
	if _, err := p.verify(t, token, make([]byte, 65)); !errors.Is(err, attest.ErrBinding) {
		t.Errorf("65-byte nonce: error %v, want a binding error", err)
	}
}

func TestPlatformDebug(t *testing.T) {
	p := newPlatform(t)
	p.platform[claimLifecycle] = int64(0x5000)
	token := p.build(t)
	opts := attest.Options{Collateral: p.keys(t)}
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
	cases := []struct {
		name   string
		edit   func(p *testPlatform)
		reason string
	}{
		{"short realm challenge", func(p *testPlatform) { p.realm[claimChallenge] = make([]byte, 32) }, "realm challenge is 32 bytes"},
		{"no personalization", func(p *testPlatform) { delete(p.realm, claimPersonalization) }, "personalization"},
		{"three REMs", func(p *testPlatform) {
			p.realm[claimREMs] = [][]byte{make([]byte, 32), make([]byte, 32), make([]byte, 32)}
		}, "3 values, want 4"},
		{"RIM size", func(p *testPlatform) { p.realm[claimRIM] = make([]byte, 48) }, "realm initial measurement is 48 bytes"},
		{"unknown hash", func(p *testPlatform) { p.realm[claimRealmHashAlgorithm] = "md5" }, "md5"},
		{"no RAK hash algorithm", func(p *testPlatform) { delete(p.realm, claimRAKHashAlgorithm) }, "public key hash algorithm"},
		{"bad RAK", func(p *testPlatform) { p.realm[claimRealmPublicKey] = []byte{0x04, 0x01} }, "realm public key"},
		{"platform profile", func(p *testPlatform) { p.platform[claimProfile] = "http://arm.com/psa/2.0.0" }, "platform profile"},
		{"realm profile", func(p *testPlatform) { p.realm[claimProfile] = "tag:arm.com,2023:realm#2.0.0" }, `realm profile "tag:arm.com,2023:realm#2.0.0"`},
		{"empty realm profile", func(p *testPlatform) { p.realm[claimProfile] = "" }, `realm profile ""`},
		{"no implementation id", func(p *testPlatform) { delete(p.platform, claimImplementationID) }, "implementation ID"},
		{"instance id", func(p *testPlatform) { p.platform[claimInstanceID] = make([]byte, 33) }, "instance ID"},
		{"no config", func(p *testPlatform) { delete(p.platform, claimPlatformConfig) }, "platform configuration"},
		{"lifecycle", func(p *testPlatform) { p.platform[claimLifecycle] = int64(0x8000) }, "not a defined state"},
		{"no software", func(p *testPlatform) { delete(p.platform, claimSoftwareComponents) }, "software components"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlatform(t)
			tc.edit(p)
			_, err := p.verify(t, p.build(t), nil)
			if !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, want malformed", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not name %q", err, tc.reason)
			}
		})
	}
}

func TestMalformedCollection(t *testing.T) {
	p := newPlatform(t)
	token := p.build(t)
	var tag cbor.Tag
	if err := cbor.Unmarshal(token, &tag); err != nil {
		t.Fatal(err)
	}
	entries := tag.Content.(map[any]any)
	cases := map[string]any{
		"other tag":     cbor.Tag{Number: 400, Content: entries},
		"no tag":        entries,
		"extra entry":   cbor.Tag{Number: collectionTag, Content: map[any]any{uint64(platformTokenKey): entries[uint64(platformTokenKey)], uint64(realmDelegatedKey): entries[uint64(realmDelegatedKey)], uint64(1): []byte{1}}},
		"no realm":      cbor.Tag{Number: collectionTag, Content: map[any]any{uint64(platformTokenKey): entries[uint64(platformTokenKey)]}},
		"swapped":       cbor.Tag{Number: collectionTag, Content: map[any]any{uint64(platformTokenKey): entries[uint64(realmDelegatedKey)], uint64(realmDelegatedKey): entries[uint64(platformTokenKey)]}},
		"entry as text": cbor.Tag{Number: collectionTag, Content: map[any]any{uint64(platformTokenKey): "x", uint64(realmDelegatedKey): entries[uint64(realmDelegatedKey)]}},
	}
	for name, v := range cases {
		data, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.verify(t, data, nil); !errors.Is(err, attest.ErrMalformed) {
			t.Errorf("%s: error %v, want malformed", name, err)
		}
	}
}

func TestUntaggedTokens(t *testing.T) {
	for _, key := range []uint64{platformTokenKey, realmDelegatedKey} {
		p := newPlatform(t)
		var tag cbor.Tag
		if err := cbor.Unmarshal(p.build(t), &tag); err != nil {
			t.Fatal(err)
		}
		entries := tag.Content.(map[any]any)
		token := entries[key].([]byte)
		if token[0] != 0xd2 {
			t.Fatalf("entry %d is not tagged", key)
		}
		entries[key] = token[1:]
		data, err := cbor.Marshal(cbor.Tag{Number: collectionTag, Content: entries})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.verify(t, data, nil)
		if !errors.Is(err, attest.ErrMalformed) {
			t.Fatalf("entry %d untagged: error %v, want malformed", key, err)
		}
		if !strings.Contains(err.Error(), "tag 18") {
			t.Errorf("entry %d untagged: error %q does not name tag 18", key, err)
		}
	}
}

func TestRealmSignedByOtherKey(t *testing.T) {
	p := newPlatform(t)
	point, _ := p.rak.PublicKey.Bytes()
	p.realm[claimRealmPublicKey] = point
	p.rak = testcert.ECDSAKey(t, elliptic.P384())
	sum := sha256.Sum256(point)
	p.platform[claimChallenge] = sum[:]
	_, err := p.verify(t, p.build(t), nil)
	if !errors.Is(err, attest.ErrSignature) || !strings.Contains(err.Error(), "realm") {
		t.Errorf("error %v, want a realm signature error", err)
	}
}

func TestRandomInput(t *testing.T) {
	p := newPlatform(t)
	set := p.keys(t)
	for i := range 500 {
		data := make([]byte, i%400)
		rand.Read(data)
		if i%2 == 0 && len(data) > 3 {
			copy(data, collectionPrefix)
		}
		(Verifier{}).Detect(data)
		if _, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{Collateral: set}); err == nil {
			t.Fatalf("random input %x accepted", data)
		}
	}
}

func TestCPAKBoundByKeyID(t *testing.T) {
	p := newPlatform(t)
	token := p.build(t)
	other := testcert.ECDSAKey(t, elliptic.P384())
	instanceID := hex.EncodeToString(p.platform[claimInstanceID].([]byte))
	jwks := func(key *ecdsa.PrivateKey, kid string) []byte {
		raw, err := json.Marshal(jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	set := &collateral.Set{}
	set.AddBytes("other.jwk.json", jwks(other, "other"))
	set.AddBytes("cpak.jwk.json", jwks(p.cpak, instanceID))
	c, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: token}, attest.Options{Collateral: set})
	if err != nil {
		t.Fatal(err)
	}
	if c.TrustAnchor.Name != "cpak.jwk.json (kid "+instanceID+")" {
		t.Errorf("trust anchor %q, want the bound JWK", c.TrustAnchor.Name)
	}

	// A key bound to the instance ID that does not verify is not replaced
	// by another supplied key.
	set = &collateral.Set{}
	set.AddBytes("wrong.jwk.json", jwks(other, instanceID))
	set.AddBytes("cpak.jwk.json", jwks(p.cpak, "unbound"))
	if _, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: token}, attest.Options{Collateral: set}); !errors.Is(err, attest.ErrSignature) {
		t.Errorf("error %v, want a signature error under the bound key", err)
	}
}
