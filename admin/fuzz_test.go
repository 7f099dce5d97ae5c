package admin

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{"Bearer abc", "bearer  abc ", "Basic abc", "Bearer", "Bearer ", "", " Bearer x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, ok := bearerToken(header)
		if !ok {
			return
		}
		if token == "" || token != strings.TrimSpace(token) {
			t.Fatalf("bearerToken(%q) = %q, want a non-empty token without surrounding space", header, token)
		}
		if !strings.Contains(header, token) {
			t.Fatalf("bearerToken(%q) = %q, not part of the header", header, token)
		}
	})
}

// publicKeyPEM encodes key as a PEM PUBLIC KEY block, as
// "openssl pkey -pubout" writes it.
func publicKeyPEM(tb testing.TB, key any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// countPEMBlocks returns the number of PEM blocks that pem.Decode finds in
// data.
func countPEMBlocks(data []byte) int {
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return n
		}
		n++
	}
}

func FuzzParseTokenKeys(f *testing.F) {
	pub1, _ := newEd25519Key(f)
	pub2, priv2 := newEd25519Key(f)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv2)
	if err != nil {
		f.Fatal(err)
	}
	ed1, ed2 := publicKeyPEM(f, pub1), publicKeyPEM(f, pub2)

	f.Add(ed1)
	f.Add(append(append([]byte{}, ed1...), ed2...))
	f.Add(append([]byte("admin signing key\n"), ed1...))
	f.Add(publicKeyPEM(f, &rsaKey.PublicKey))
	f.Add(append(append([]byte{}, ed1...), publicKeyPEM(f, &rsaKey.PublicKey)...))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	f.Add(ed1[:len(ed1)/2])
	f.Add([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA admin@example"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseTokenKeys(data)
		if err != nil {
			if keys != nil {
				t.Errorf("ParseTokenKeys returned %d keys with the error %v", len(keys), err)
			}
			return
		}

		// Every PEM block of an accepted file is one Ed25519 key.
		if len(keys) == 0 {
			t.Fatal("ParseTokenKeys returned no keys and no error")
		}
		if n := countPEMBlocks(data); len(keys) != n {
			t.Fatalf("ParseTokenKeys returned %d keys from %d PEM blocks", len(keys), n)
		}
		for i, key := range keys {
			if len(key) != ed25519.PublicKeySize {
				t.Fatalf("key %d is %d bytes, want %d", i+1, len(key), ed25519.PublicKeySize)
			}
		}

		// The keys, written back as PEM, parse to the same keys.
		var out bytes.Buffer
		for _, key := range keys {
			out.Write(publicKeyPEM(t, key))
		}
		again, err := ParseTokenKeys(out.Bytes())
		if err != nil {
			t.Fatalf("the accepted keys do not parse again: %v", err)
		}
		if len(again) != len(keys) {
			t.Fatalf("%d keys parse back as %d", len(keys), len(again))
		}
		for i := range keys {
			if !again[i].Equal(keys[i]) {
				t.Fatalf("key %d parses back as %x, want %x", i+1, again[i], keys[i])
			}
		}
	})
}

// An accepted body decodes to the same request with a plain decoder, and
// re-encoding that request gives a body that is accepted again.
func FuzzDecodeJSONBody(f *testing.F) {
	for _, seed := range []string{
		`{"value":"` + strings.Repeat("a1", 48) + `"}`,
		`{"value":"1","expires":"2030-01-02T03:04:05Z"}`,
		`{"value":"1","value":"2"}`,
		`{"Value":"1"}`,
		`{"value":"1"}]`,
		`{"value":"1"} {}`,
		`{}`,
		`null`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ReferenceValueRequest
		if err := decodeJSONBody(bytes.NewReader(body), &req); err != nil {
			return
		}
		if err := jsonvalue.WalkMembers(body, nil); err != nil {
			t.Fatalf("decodeJSONBody accepted %q, whose members are invalid: %v", body, err)
		}
		var plain ReferenceValueRequest
		if err := json.Unmarshal(body, &plain); err != nil {
			t.Fatalf("decodeJSONBody accepted %q, which json.Unmarshal rejects: %v", body, err)
		}
		if plain.Value != req.Value || !plain.Expires.Equal(req.Expires) {
			t.Fatalf("decodeJSONBody(%q) = %+v, json.Unmarshal gives %+v", body, req, plain)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var round ReferenceValueRequest
		if err := decodeJSONBody(bytes.NewReader(again), &round); err != nil {
			t.Fatalf("decodeJSONBody rejected the re-encoded body %s: %v", again, err)
		}
	})
}
