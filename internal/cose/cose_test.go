package cose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	gocose "github.com/veraison/go-cose"
)

func TestUnmarshalStrict(t *testing.T) {
	cases := []struct {
		name string
		data []byte
	}{
		{"duplicate key", []byte{0xa2, 0x01, 0x01, 0x01, 0x02}},
		{"indefinite map", []byte{0xbf, 0x01, 0x01, 0xff}},
		{"indefinite bytes", []byte{0x5f, 0x41, 0x00, 0xff}},
		{"tag", []byte{0xc1, 0x01}},
		{"trailing byte", []byte{0xa1, 0x01, 0x01, 0x00}},
		{"invalid UTF-8", []byte{0xa1, 0x01, 0x61, 0xff}},
		{"truncated", []byte{0xa2, 0x01, 0x01}},
	}
	for _, tc := range cases {
		var v map[int64]any
		if err := Unmarshal(tc.data, &v); err == nil {
			t.Errorf("%s: %x decoded", tc.name, tc.data)
		}
	}
	var v map[int64]any
	if err := Unmarshal([]byte{0xa1, 0x01, 0x01}, &v); err != nil {
		t.Errorf("valid map: %v", err)
	}
	var tagged any
	if err := UnmarshalTagged([]byte{0xc1, 0x01}, &tagged); err != nil {
		t.Errorf("tag in tagged mode: %v", err)
	}
}

func TestClaimsSetTypes(t *testing.T) {
	// {10: "text", 11: h'01', 12: -3}
	set, err := DecodeClaimsSet([]byte{0xa3, 0x0a, 0x64, 't', 'e', 'x', 't', 0x0b, 0x41, 0x01, 0x0c, 0x22})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := set.Bytes(10); !ok || err == nil {
		t.Errorf("text claim read as bytes: ok %v, err %v", ok, err)
	}
	if _, ok, err := set.Text(11); !ok || err == nil {
		t.Errorf("byte claim read as text: ok %v, err %v", ok, err)
	}
	if v, ok, err := set.Int(12); !ok || err != nil || v != -3 {
		t.Errorf("int claim: %d, %v, %v", v, ok, err)
	}
	if _, ok, _ := set.Bytes(13); ok {
		t.Error("absent claim reported present")
	}
	if _, err := DecodeClaimsSet([]byte{0xa1, 0x61, 'a', 0x01}); err == nil {
		t.Error("text claim key accepted")
	}
	if _, err := DecodeClaimsSet([]byte{0x80}); err == nil {
		t.Error("array accepted as a claims set")
	}
}

func TestSign1Algorithms(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name   string
		alg    gocose.Algorithm
		signer crypto.Signer
		verify crypto.PublicKey
		ok     bool
	}{
		{"ES256 P-256", gocose.AlgorithmES256, p256, &p256.PublicKey, true},
		{"ES384 P-384", gocose.AlgorithmES384, p384, &p384.PublicKey, true},
		{"ES256 header P-384 key", gocose.AlgorithmES256, p384, &p384.PublicKey, false},
		{"EdDSA", gocose.AlgorithmEdDSA, edKey, edKey.Public(), true},
		{"PS256", gocose.AlgorithmPS256, rsaKey, &rsaKey.PublicKey, true},
		{"ES256 with RSA key", gocose.AlgorithmES256, p256, &rsaKey.PublicKey, false},
	}
	for _, tc := range cases {
		signer, err := gocose.NewSigner(tc.alg, tc.signer)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		token, err := gocose.Sign1(rand.Reader, signer, gocose.Headers{Protected: gocose.ProtectedHeader{gocose.HeaderLabelAlgorithm: tc.alg}}, []byte{0xa0}, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		msg, err := DecodeSign1(token)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = msg.Verify(tc.verify)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrAlgorithm) {
			t.Errorf("%s: error %v, want an algorithm error", tc.name, err)
		}
	}
}

func TestDecodeSign1Errors(t *testing.T) {
	cases := map[string][]byte{
		"empty":         {},
		"one byte":      {0xd2},
		"not an array":  {0xa0, 0x00},
		"wrong tag":     {0xd3, 0x84, 0x40, 0xa0, 0x41, 0x00, 0x41, 0x00},
		"nil payload":   {0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0xf6, 0x41, 0x00},
		"no alg":        {0xd2, 0x84, 0x40, 0xa0, 0x41, 0xa0, 0x41, 0x00},
		"trailing byte": {0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x41, 0xa0, 0x41, 0x00, 0x00},
	}
	for name, data := range cases {
		if _, err := DecodeSign1(data); err == nil {
			t.Errorf("%s: %x decoded", name, data)
		}
	}
	valid := []byte{0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x41, 0xa0, 0x41, 0x00}
	msg, err := DecodeSign1(valid)
	if err != nil {
		t.Fatal(err)
	}
	if !msg.Tagged || msg.Algorithm != gocose.AlgorithmES256 {
		t.Errorf("tagged %v, alg %v", msg.Tagged, msg.Algorithm)
	}
	if !strings.Contains(msg.Verify(nil).Error(), "not allowed") {
		t.Error("nil key not rejected by the allow-list")
	}
}

func FuzzDecodeClaimsSet(f *testing.F) {
	f.Add([]byte{0xa1, 0x0a, 0x41, 0x00})
	f.Add([]byte{0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x41, 0xa0, 0x41, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		if set, err := DecodeClaimsSet(data); err == nil {
			for k := range set {
				set.Bytes(k)
				set.Text(k)
				set.Int(k)
			}
		}
		DecodeSign1(data)
	})
}

func TestDecodeSign1CriticalHeader(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gocose.NewSigner(gocose.AlgorithmES256, key)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		protected gocose.ProtectedHeader
		ok        bool
	}{
		{"no crit", gocose.ProtectedHeader{gocose.HeaderLabelAlgorithm: gocose.AlgorithmES256}, true},
		{"crit alg", gocose.ProtectedHeader{gocose.HeaderLabelAlgorithm: gocose.AlgorithmES256, gocose.HeaderLabelCritical: []any{int64(1)}}, true},
		{"crit unknown label", gocose.ProtectedHeader{gocose.HeaderLabelAlgorithm: gocose.AlgorithmES256, gocose.HeaderLabelCritical: []any{int64(99)}, int64(99): "x"}, false},
		{"crit text label", gocose.ProtectedHeader{gocose.HeaderLabelAlgorithm: gocose.AlgorithmES256, gocose.HeaderLabelCritical: []any{"policy"}, "policy": "x"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token, err := gocose.Sign1(rand.Reader, signer, gocose.Headers{Protected: tc.protected}, []byte{0xa0}, nil)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := DecodeSign1(token)
			if tc.ok {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if err := msg.Verify(&key.PublicKey); err != nil {
					t.Errorf("signature: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("a critical header this package does not process was accepted")
			}
			if !strings.Contains(err.Error(), "crit") {
				t.Errorf("error %q does not name the crit header", err)
			}
		})
	}
}
