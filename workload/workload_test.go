package workload

import (
	"context"
	"crypto/sha512"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

var testManifest = []byte(`{"name": "test", "parties": ["a"]}`)

var testMeasurement = func() []byte {
	sum := sha512.Sum384([]byte("workload test build"))
	return sum[:]
}()

// openOnce shares one emulated TEE between the tests, because each
// emulator generates two RSA-4096 keys.
var (
	teeOnce sync.Once
	testTEE *TEE
	teeErr  error
)

func sharedTEE(t *testing.T) *TEE {
	t.Helper()
	teeOnce.Do(func() {
		d, err := HashManifest(testManifest)
		if err != nil {
			teeErr = err
			return
		}
		testTEE, teeErr = OpenTEE(context.Background(), d, TEEOptions{Emulated: true, Measurement: testMeasurement})
	})
	if teeErr != nil {
		t.Fatal(teeErr)
	}
	return testTEE
}

type testParty struct {
	Party
	cert tls.Certificate
}

func newParty(t *testing.T, name string) testParty {
	t.Helper()
	key, _, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h, err := KeyHash(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ClientCertificate(key, name)
	if err != nil {
		t.Fatal(err)
	}
	return testParty{Party{Name: name, KeyHash: h}, cert}
}

// startServer serves a handler that echoes the caller's party name on
// 127.0.0.1 and returns its address.
func startServer(t *testing.T, tee *TEE, parties ...Party) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PartyFromContext(r.Context())
		if !ok {
			http.Error(w, "no party", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, p.Name)
	})
	go func() { done <- Serve(ctx, ln, ServerConfig{TEE: tee, Parties: parties, Handler: h, Log: quietLog()}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func expectFor(tee *TEE, manifest []byte, measurement []byte) Expect {
	d, _ := HashManifest(manifest)
	return Expect{
		Manifest:    d,
		Measurement: measurement,
		Attest:      attest.Options{TrustAnchors: tee.TrustAnchors()},
		Appraise:    appraise.Options{AllowEmulated: true},
	}
}

func get(t *testing.T, addr string, e Expect, p testParty) (string, error) {
	t.Helper()
	c, err := NewClient(addr, e, p.cert)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTPClient().Get("https://workload/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestServeIdentifiesParty(t *testing.T) {
	tee := sharedTEE(t)
	a, b := newParty(t, "bank-a"), newParty(t, "bank-b")
	addr := startServer(t, tee, a.Party, b.Party)
	for _, p := range []testParty{a, b} {
		got, err := get(t, addr, expectFor(tee, testManifest, testMeasurement), p)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if got != p.Name {
			t.Errorf("handler saw party %q, want %q", got, p.Name)
		}
	}
}

func TestServeRejects(t *testing.T) {
	tee := sharedTEE(t)
	a, stranger := newParty(t, "bank-a"), newParty(t, "stranger")
	addr := startServer(t, tee, a.Party)
	otherManifest := []byte(`{"name": "test", "parties": ["a", "b"]}`)
	otherMeasurement := make([]byte, 48)

	wantDigest, _ := HashManifest(otherManifest)
	boundDigest, _ := HashManifest(testManifest)
	cases := []struct {
		name   string
		expect Expect
		party  testParty
		want   []string
	}{
		{"other manifest", expectFor(tee, otherManifest, testMeasurement), a, []string{boundDigest.String(), wantDigest.String()}},
		{"other measurement", expectFor(tee, testManifest, otherMeasurement), a, []string{"measurement"}},
		{"party not listed", expectFor(tee, testManifest, testMeasurement), stranger, []string{"rejected this party's key", stranger.KeyHash.String()}},
		{"no emulated allowed", Expect{Manifest: boundDigest, Measurement: testMeasurement, Attest: attest.Options{TrustAnchors: tee.TrustAnchors()}}, a, []string{"emulated"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := get(t, addr, tc.expect, tc.party)
			if err == nil {
				t.Fatal("request succeeded, expected a rejection")
			}
			t.Logf("rejected: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q: %v", w, err)
				}
			}
		})
	}
}

func TestCanonicalIgnoresLayout(t *testing.T) {
	a, err := HashManifest([]byte(`{"b": [1, 2], "a": "x<y"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashManifest([]byte("{\n  \"a\": \"x<y\",\n  \"b\": [1,2]\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("digests differ: %s and %s", a, b)
	}
	canon, _ := Canonical([]byte(`{"b": [1, 2], "a": "x<y"}`))
	if got, want := string(canon), `{"a":"x<y","b":[1,2]}`; got != want {
		t.Errorf("Canonical = %s, want %s", got, want)
	}
}

func TestCanonicalRejectsInvalid(t *testing.T) {
	for _, in := range []string{"", "{", `{"a":1} {}`, `{"a":}`, "\xff"} {
		if _, err := Canonical([]byte(in)); err == nil {
			t.Errorf("Canonical(%q) succeeded, expected an error", in)
		}
	}
}

func TestBoundDigest(t *testing.T) {
	var d Digest
	d[0] = 0xab
	tdx, _ := HostData(attest.TEETDX, d)
	badTail := append([]byte(nil), tdx...)
	badTail[40] = 1
	cases := []struct {
		name   string
		claims attest.Claims
		ok     bool
	}{
		{"snp", attest.Claims{TEE: attest.TEESNP, HostData: d[:]}, true},
		{"tdx", attest.Claims{TEE: attest.TEETDX, HostData: tdx}, true},
		{"tdx nonzero tail", attest.Claims{TEE: attest.TEETDX, HostData: badTail}, false},
		{"no host data", attest.Claims{TEE: attest.TEESNP}, false},
		{"snp short", attest.Claims{TEE: attest.TEESNP, HostData: d[:16]}, false},
		{"nitro", attest.Claims{TEE: attest.TEENitro, HostData: d[:]}, false},
	}
	for _, tc := range cases {
		got, err := BoundDigest(&tc.claims)
		if tc.ok && (err != nil || got != d) {
			t.Errorf("%s: BoundDigest = %s, %v; want %s", tc.name, got, err, d)
		}
		if !tc.ok && err == nil {
			t.Errorf("%s: BoundDigest succeeded, expected an error", tc.name)
		}
	}
}

func TestOpenTEEReloadsEmulator(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	d, _ := HashManifest(testManifest)
	first, err := OpenTEE(ctx, d, TEEOptions{Emulated: true, Measurement: testMeasurement, EmulatorDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	again, err := OpenTEE(ctx, d, TEEOptions{Emulated: true, EmulatorDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Emulator.Root().Equal(first.Emulator.Root()) {
		t.Error("reopening the emulator directory created another development root")
	}

	other, _ := HashManifest([]byte(`{"name": "other"}`))
	if _, err := OpenTEE(ctx, other, TEEOptions{Emulated: true, EmulatorDir: dir}); err == nil || !strings.Contains(err.Error(), other.String()) {
		t.Errorf("OpenTEE with another manifest: %v, want an error naming %s", err, other)
	}
	if _, err := OpenTEE(ctx, d, TEEOptions{Emulated: true, EmulatorDir: dir, Measurement: make([]byte, 48)}); err == nil || !strings.Contains(err.Error(), "measurement") {
		t.Errorf("OpenTEE with another measurement: %v, want a measurement error", err)
	}
}
