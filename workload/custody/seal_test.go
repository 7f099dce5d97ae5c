package custody

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func testSealer(t testing.TB) (sealKey []byte) {
	t.Helper()
	k := make([]byte, SealingKeySize)
	rand.Read(k)
	return k
}

// Every key type seals, parses and unseals to a key that signs
// verifiably with the sealed public key.
func TestSealRoundTrip(t *testing.T) {
	aead, err := newSealer(testSealer(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []KeyType{Ed25519, ECDSAP256, Secp256k1} {
		t.Run(string(typ), func(t *testing.T) {
			key, secret, err := generateKey(typ)
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := seal(aead, "k", key, secret)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(sealed.Ciphertext), string(secret)) {
				t.Fatal("the ciphertext contains the private key")
			}
			raw, err := json.Marshal(sealed)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ParseSealedKey(raw)
			if err != nil {
				t.Fatal(err)
			}
			opened, err := unseal(aead, parsed, "k", typ)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := opened.sign([]byte("message"))
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifySignature(typ, sealed.PublicKey, []byte("message"), sig); err != nil {
				t.Error(err)
			}
		})
	}
}

// A sealed key does not open under another name, type or public key, or
// under another sealing key.
func TestUnsealRejectsSubstitution(t *testing.T) {
	aead, err := newSealer(testSealer(t))
	if err != nil {
		t.Fatal(err)
	}
	key, secret, err := generateKey(ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := seal(aead, "a", key, secret)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := generateKey(ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}

	renamed := *sealed
	renamed.Name = "b"
	if _, err := unseal(aead, &renamed, "b", ECDSAP256); err == nil {
		t.Error("a sealed key opened under another name")
	}
	if _, err := unseal(aead, sealed, "a", Secp256k1); err == nil {
		t.Error("a sealed key opened as another type")
	}
	swapped := *sealed
	swapped.PublicKey = other.public
	if _, err := unseal(aead, &swapped, "a", ECDSAP256); err == nil {
		t.Error("a sealed key opened with another public key")
	}
	otherSealer, err := newSealer(testSealer(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unseal(otherSealer, sealed, "a", ECDSAP256); err == nil {
		t.Error("a sealed key opened under another sealing key")
	}
}

func TestNewSealerRejectsShortKey(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := newSealer(make([]byte, n)); err == nil {
			t.Errorf("a sealing key of %d bytes was accepted", n)
		}
	}
}

func TestParseSealedKeyRejects(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"empty", ``, "invalid sealed key file"},
		{"version", `{"version":2,"name":"a","type":"ed25519"}`, "version 2"},
		{"type", `{"version":1,"name":"a","type":"rsa"}`, "unknown key type"},
		{"unknown field", `{"version":1,"name":"a","type":"ed25519","private_key":"AA=="}`, "unknown field"},
		{"bad base64", `{"version":1,"name":"a","type":"ed25519","nonce":"!"}`, "invalid sealed key file"},
		{"second object", `{"version":1,"name":"a","type":"ed25519"}{"version":1,"name":"b","type":"ed25519"}`, `continues after the closing "}"`},
		{"trailing text", `{"version":1,"name":"a","type":"ed25519"} x`, `continues after the closing "}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSealedKey([]byte(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseSealedKey() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestKeyFromSecretRejectsInvalidSecp256k1(t *testing.T) {
	order := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41}
	for name, secret := range map[string][]byte{"zero": make([]byte, 32), "group order": order, "short": make([]byte, 31)} {
		if _, err := keyFromSecret(Secp256k1, secret); err == nil {
			t.Errorf("%s secp256k1 scalar was accepted", name)
		}
	}
}

// FuzzParseSealedKey checks that no file makes parsing or unsealing
// panic, and that a file that unseals holds the private key of its
// public key.
func FuzzParseSealedKey(f *testing.F) {
	aead, err := newSealer(make([]byte, SealingKeySize))
	if err != nil {
		f.Fatal(err)
	}
	key, secret, err := generateKey(Secp256k1)
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := seal(aead, "k", key, secret)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(sealed)
	f.Add(good)
	f.Add([]byte(`{"version":1,"name":"k","type":"ed25519","nonce":"AAAAAAAAAAAAAAAA","ciphertext":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseSealedKey(raw)
		if err != nil {
			return
		}
		k, err := unseal(aead, s, s.Name, s.Type)
		if err == nil && !bytes.Equal(k.public, s.PublicKey) {
			t.Errorf("the unsealed key does not match the file's public key")
		}
	})
}

// A sealed file that cannot be opened stops Open with an error that names
// the key, the file, what is wrong and how to restore the key, and the
// file is left as it was.
func TestOpenRejectsDamagedSealedFile(t *testing.T) {
	m := testManifest(t)
	sealingKey := staticSealingKey(testSealer(t))
	origin := t.TempDir()
	firstStart(t, m, origin, sealingKey)
	otherKey := staticSealingKey(testSealer(t))
	otherDir := t.TempDir()
	firstStart(t, m, otherDir, otherKey)

	read := func(dir, name string) []byte {
		raw, err := os.ReadFile(sealedPath(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	flipped := func() []byte {
		s, err := ParseSealedKey(read(origin, "api-p256"))
		if err != nil {
			t.Fatal(err)
		}
		s.Ciphertext[0] ^= 1
		raw, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	cases := []struct {
		name     string
		contents []byte
		want     []string
	}{
		{"empty", nil, []string{"invalid sealed key file", "restore the file from a backup"}},
		{"truncated", read(origin, "api-p256")[:100], []string{"unexpected EOF", "restore the file from a backup"}},
		{"modified ciphertext", flipped(), []string{"decryption failed", "restore the file from a backup"}},
		{"other sealing key", read(otherDir, "api-p256"), []string{"decryption failed", "the sealing key that sealed it"}},
		{"file of another key", read(origin, "btc-hot"), []string{`the file contains key "btc-hot"`, "restore the file from a backup"}},
		{"larger than the limit", bytes.Repeat([]byte(" "), maxSealedFile+1), []string{"is 65537 bytes, larger than the limit of 65536 bytes", "restore the file from a backup"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, origin)
			path := sealedPath(dir, "api-p256")
			if err := os.WriteFile(path, c.contents, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := openTest(m, dir, sealingKey, Options{CreateMissing: true})
			if err == nil {
				t.Fatal("Open accepted the file")
			}
			for _, want := range append([]string{`key "api-p256"`, path}, c.want...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			after, readErr := os.ReadFile(path)
			if readErr != nil || !bytes.Equal(after, c.contents) {
				t.Errorf("Open changed the damaged file: %v", readErr)
			}
		})
	}
}
