package custody

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// staticSealingKey is a key broker stand-in that releases the same
// sealing key every time.
type staticSealingKey []byte

// Resource returns a copy, because Open clears the bytes it receives.
func (k staticSealingKey) Resource(ctx context.Context, path string) ([]byte, error) {
	return bytes.Clone(k), nil
}

// testManifest returns a valid manifest with one key of each type and no
// pins.
func testManifest(t *testing.T) *Manifest {
	t.Helper()
	_, alice := workloadtest.NewParty(t, "alice")
	return &Manifest{
		Name: "treasury", SealingKey: "custody/sealing/key", Parties: []Party{alice},
		Keys: []KeyPolicy{
			{Name: "release-signing", Type: Ed25519, Signers: []string{"alice"}},
			{Name: "api-p256", Type: ECDSAP256, Signers: []string{"alice"}},
			{Name: "btc-hot", Type: Secp256k1, Signers: []string{"alice"}},
		},
	}
}

// openTest opens m from dir with the sealing key and a quiet log.
func openTest(m *Manifest, dir string, sealingKey staticSealingKey, opts Options) (*Service, error) {
	return Open(context.Background(), m, dir, sealingKey, workloadtest.QuietLog(), opts)
}

// firstStart opens m from the empty directory dir, which generates every
// key, and fails the test on an error.
func firstStart(t *testing.T, m *Manifest, dir string, sealingKey staticSealingKey) *Service {
	t.Helper()
	s, err := openTest(m, dir, sealingKey, Options{})
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	return s
}

// mustPin returns m with the public keys of s pinned.
func mustPin(t *testing.T, m *Manifest, s *Service) *Manifest {
	t.Helper()
	pinned, err := m.PinPublicKeys(s.PublicKeys())
	if err != nil {
		t.Fatal(err)
	}
	return pinned
}

// pinOnly returns a copy of m in which only the keys named in names keep
// the public key that pinned gives them.
func pinOnly(m, pinned *Manifest, names []string) *Manifest {
	out := *m
	out.Keys = slices.Clone(m.Keys)
	for i, k := range pinned.Keys {
		if slices.Contains(names, k.Name) {
			out.Keys[i].PublicKey = k.PublicKey
		}
	}
	return &out
}

// sealedFiles returns the names of the sealed key files in dir, sorted.
func sealedFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), sealedFileSuffix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// copyDir copies the regular files of src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// copySealed copies the sealed file of the key name from the directory
// src to dst, over the file there.
func copySealed(t *testing.T, src, dst, name string) {
	t.Helper()
	raw, err := os.ReadFile(sealedPath(src, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sealedPath(dst, name), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// publicKeysByName returns the base64 public keys of s by key name.
func publicKeysByName(s *Service) map[string]string {
	out := map[string]string{}
	for _, k := range s.PublicKeys() {
		out[k.Name] = base64.StdEncoding.EncodeToString(k.PublicKey)
	}
	return out
}

// Open with pinned public keys: a key whose public key the manifest pins
// is never generated, and a sealed file that contains another key stops
// Open. Keys without a pin keep the first-start and CreateMissing rules.
func TestOpenPinnedKeys(t *testing.T) {
	sealingKey := staticSealingKey(testSealer(t))
	m := testManifest(t)
	allKeys := []string{"release-signing", "api-p256", "btc-hot"}

	// The first start without pins generates the keys that the cases pin.
	original := t.TempDir()
	pinned := mustPin(t, m, firstStart(t, m, original, sealingKey))
	// Another start from an empty directory seals other keys with the same
	// names and types under the same sealing key, as a host can do while
	// the key broker releases the sealing key to the unpinned manifest.
	other := t.TempDir()
	firstStart(t, m, other, sealingKey)

	tests := []struct {
		name          string
		pin           []string
		remove        []string
		replace       []string // files copied from the other start
		createMissing bool
		wantErr       []string
		wantNew       []string // keys that get a new public key
	}{
		{name: "all pinned and present", pin: allKeys},
		{name: "some pinned and present", pin: []string{"btc-hot"}},
		{
			name: "pinned file removed", pin: allKeys, remove: []string{"btc-hot"},
			wantErr: []string{`key "btc-hot"`, "sealed file is missing", "pins the key's public key", "restore it from a backup"},
		},
		{
			name: "pinned file removed with CreateMissing", pin: allKeys, remove: []string{"btc-hot"}, createMissing: true,
			wantErr: []string{`key "btc-hot"`, "pins the key's public key"},
		},
		{
			name: "all files removed", pin: allKeys, remove: allKeys,
			wantErr: []string{`key "release-signing"`, "pins the key's public key", "restore it from a backup"},
		},
		{
			name: "all files removed with CreateMissing", pin: allKeys, remove: allKeys, createMissing: true,
			wantErr: []string{"pins the key's public key"},
		},
		{
			// The unpinned key comes first in the manifest, and the failed
			// Open must not leave a new sealed file for it.
			name: "all files removed, one key pinned", pin: []string{"btc-hot"}, remove: allKeys,
			wantErr: []string{`key "btc-hot"`, "pins the key's public key"},
		},
		{
			name: "pinned file replaced", pin: allKeys, replace: []string{"api-p256"},
			wantErr: []string{`key "api-p256"`, "the sealed file contains public key", "but the manifest pins public_key", "restore the file from a backup"},
		},
		{
			name: "pinned file replaced and another removed", pin: allKeys, replace: []string{"api-p256"}, remove: []string{"release-signing"},
			createMissing: true,
			wantErr:       []string{`key "api-p256"`, "but the manifest pins public_key"},
		},
		{
			name: "unpinned file replaced", pin: []string{"btc-hot"}, replace: []string{"api-p256"},
			wantNew: []string{"api-p256"},
		},
		{
			name: "unpinned file removed", pin: []string{"btc-hot"}, remove: []string{"api-p256"},
			wantErr: []string{`key "api-p256"`, "the sealed file is missing, while other keys", "--create-missing-keys"},
		},
		{
			name: "unpinned file removed with CreateMissing", pin: []string{"btc-hot"}, remove: []string{"api-p256"}, createMissing: true,
			wantNew: []string{"api-p256"},
		},
		{
			name: "unpinned files all removed", remove: allKeys,
			wantNew: allKeys,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, original)
			for _, name := range tt.remove {
				if err := os.Remove(sealedPath(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range tt.replace {
				copySealed(t, other, dir, name)
			}
			before := sealedFiles(t, dir)

			s, err := openTest(pinOnly(m, pinned, tt.pin), dir, sealingKey, Options{CreateMissing: tt.createMissing})
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("Open succeeded, want an error")
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Open error %q does not contain %q", err, want)
					}
				}
				if after := sealedFiles(t, dir); !slices.Equal(after, before) {
					t.Errorf("the failed Open changed the sealed files from %v to %v", before, after)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got := publicKeysByName(s)
			for _, k := range pinned.Keys {
				changed := got[k.Name] != k.PublicKey
				if want := slices.Contains(tt.wantNew, k.Name); changed != want {
					t.Errorf("key %s has a new public key = %v, want %v", k.Name, changed, want)
				}
			}
		})
	}
}

// The error of a replaced file names the expected and the actual public
// key, so the operator can tell which backup has the right file.
func TestOpenPinMismatchNamesBothKeys(t *testing.T) {
	sealingKey := staticSealingKey(testSealer(t))
	m := testManifest(t)
	dir, other := t.TempDir(), t.TempDir()
	first := firstStart(t, m, dir, sealingKey)
	second := firstStart(t, m, other, sealingKey)
	pinned := mustPin(t, m, first)
	copySealed(t, other, dir, "btc-hot")

	_, err := openTest(pinned, dir, sealingKey, Options{})
	if err == nil {
		t.Fatal("Open accepted a sealed file that contains another key than the pin")
	}
	expected := publicKeysByName(first)["btc-hot"]
	actual := publicKeysByName(second)["btc-hot"]
	if !strings.Contains(err.Error(), "public_key "+expected) {
		t.Errorf("error %q does not name the pinned public key %s", err, expected)
	}
	if !strings.Contains(err.Error(), "contains public key "+actual) {
		t.Errorf("error %q does not name the sealed file's public key %s", err, actual)
	}
}

// pinFixture returns base64 public keys: one of each key type in the
// encoding a pin uses, a P-384 key and an uncompressed secp256k1 key.
func pinFixture(t *testing.T) (ed, p256, k1, p384, k1Uncompressed string) {
	t.Helper()
	generate := func(typ KeyType) *signingKey {
		key, secret, err := generateKey(typ)
		if err != nil {
			t.Fatal(err)
		}
		clear(secret)
		return key
	}
	edKey, p256Key, k1Key := generate(Ed25519), generate(ECDSAP256), generate(Secp256k1)
	p384Key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, err := x509.MarshalPKIXPublicKey(&p384Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	return b64(edKey.public), b64(p256Key.public), b64(k1Key.public), b64(p384DER), b64(k1Key.k1.PubKey().SerializeUncompressed())
}

// manifestWithPin returns a manifest file with one key of typ whose
// public_key is pin, written as a JSON string literal.
func manifestWithPin(typ KeyType, pinLiteral string) []byte {
	return []byte(`{"sealing_key":"a/b/c","parties":[{"name":"a","key_sha256":"` + strings.Repeat("01", 32) + `"}],` +
		`"keys":[{"name":"k","type":"` + string(typ) + `","signers":["a"],"public_key":` + pinLiteral + `}]}`)
}

func TestParseManifestPublicKey(t *testing.T) {
	ed, p256, k1, p384, k1Uncompressed := pinFixture(t)
	quote := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	// Not on the curve: x = 5 has no y on secp256k1.
	offCurve := base64.StdEncoding.EncodeToString(append([]byte{0x02}, append(make([]byte, 31), 5)...))
	// "AB==" and "AC==" decode to the same byte, so only one is canonical.
	tests := []struct {
		name string
		typ  KeyType
		pin  string // JSON literal
		want string // "" means valid
	}{
		{"ed25519", Ed25519, quote(ed), ""},
		{"ecdsa-p256", ECDSAP256, quote(p256), ""},
		{"secp256k1", Secp256k1, quote(k1), ""},
		{"empty means unpinned", Ed25519, `""`, ""},
		{"not base64", Ed25519, `"not base64!"`, "is not standard base64"},
		{"URL-safe base64", Ed25519, `"ab-_"`, "is not standard base64"},
		{"line break", ECDSAP256, quote(p256[:64] + "\n" + p256[64:]), "is not canonical base64"},
		{"non-zero padding bits", Secp256k1, `"AC=="`, "is not canonical base64"},
		{"not PKIX", Ed25519, quote(k1), "not a PKIX"},
		{"Ed25519 for P-256", ECDSAP256, quote(ed), "an Ed25519 public key for a key of type ecdsa-p256"},
		{"P-256 for Ed25519", Ed25519, quote(p256), "an ECDSA P-256 public key for a key of type ed25519"},
		{"P-384 for P-256", ECDSAP256, quote(p384), "an ECDSA P-384 public key for a key of type ecdsa-p256"},
		{"PKIX for secp256k1", Secp256k1, quote(p256), "but a secp256k1 public key is 33 bytes"},
		{"uncompressed secp256k1", Secp256k1, quote(k1Uncompressed), "65 bytes, but a secp256k1 public key is 33 bytes"},
		{"secp256k1 off the curve", Secp256k1, quote(offCurve), "not a secp256k1 public key"},
		{"not a string", Ed25519, `42`, "cannot unmarshal number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, err := ParseManifest(manifestWithPin(tt.typ, tt.pin))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ParseManifest: %v", err)
				}
				if _, err := m.Keys[0].pinnedPublicKey(); err != nil {
					t.Errorf("pinnedPublicKey: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseManifest accepted public_key %s for a key of type %s", tt.pin, tt.typ)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.pin == `42` {
				return // the JSON decoder reports the type error, not Validate
			}
			for _, part := range []string{`key "k"`, "public_key", "cloister custody keys"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not name %s", err, part)
				}
			}
		})
	}
}

// A long invalid public_key is cut in the error.
func TestParseManifestPublicKeyCutInError(t *testing.T) {
	long := strings.Repeat("A", 10000)
	_, _, err := ParseManifest(manifestWithPin(Ed25519, `"`+long+`"`))
	if err == nil {
		t.Fatal("ParseManifest accepted an invalid public_key")
	}
	if len(err.Error()) > 1000 {
		t.Errorf("the error has %d bytes; it should cut the value", len(err.Error()))
	}
	if !strings.Contains(err.Error(), "(10000 bytes)") {
		t.Errorf("error %q does not give the value's length", err)
	}
}

// PinPublicKeys writes a manifest that parses, pins every key, and has
// another digest than the manifest without pins.
func TestPinPublicKeys(t *testing.T) {
	sealingKey := staticSealingKey(testSealer(t))
	m := testManifest(t)
	s := firstStart(t, m, t.TempDir(), sealingKey)
	keys := s.PublicKeys()
	pinned := mustPin(t, m, s)
	for i, k := range pinned.Keys {
		if want := base64.StdEncoding.EncodeToString(keys[i].PublicKey); k.PublicKey != want {
			t.Errorf("key %s: public_key %q, want %q", k.Name, k.PublicKey, want)
		}
		if m.Keys[i].PublicKey != "" {
			t.Errorf("PinPublicKeys changed key %s of the original manifest", k.Name)
		}
	}

	unpinnedRaw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	pinnedRaw, err := json.Marshal(pinned)
	if err != nil {
		t.Fatal(err)
	}
	_, unpinnedDigest, err := ParseManifest(unpinnedRaw)
	if err != nil {
		t.Fatal(err)
	}
	reparsed, pinnedDigest, err := ParseManifest(pinnedRaw)
	if err != nil {
		t.Fatalf("the pinned manifest does not parse: %v", err)
	}
	if pinnedDigest == unpinnedDigest {
		t.Error("pinning did not change the manifest digest")
	}
	if _, err := reparsed.PinPublicKeys(keys); err != nil {
		t.Errorf("pinning the same keys again: %v", err)
	}
}

func TestPinPublicKeysRejects(t *testing.T) {
	sealingKey := staticSealingKey(testSealer(t))
	m := testManifest(t)
	keys := firstStart(t, m, t.TempDir(), sealingKey).PublicKeys()
	pinnedToOther := mustPin(t, m, firstStart(t, m, t.TempDir(), sealingKey))

	wrongType := slices.Clone(keys)
	wrongType[2].Type = Ed25519
	tests := []struct {
		name string
		m    *Manifest
		keys []PublicKey
		want string
	}{
		{"missing key", m, keys[:2], `no public key for key "btc-hot"`},
		{"other type", m, wrongType, `ed25519 public key for key "btc-hot", but the manifest lists type secp256k1`},
		{"other pin", pinnedToOther, keys, `for key "release-signing", but the manifest pins`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.m.PinPublicKeys(tt.keys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PinPublicKeys() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
