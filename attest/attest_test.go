package attest

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

func TestErrorMessageAndKind(t *testing.T) {
	err := Errorf(ErrChain, "VCEK", "certificate expired at %s", "2025-12-10T22:14:21Z").
		WithValues("2026-01-15T00:00:00Z", "before 2025-12-10T22:14:21Z").
		WithFix("fetch a current VLEK")
	want := "untrusted certificate chain: VCEK: certificate expired at 2025-12-10T22:14:21Z " +
		"(value 2026-01-15T00:00:00Z, expected before 2025-12-10T22:14:21Z); fetch a current VLEK"
	if err.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", err.Error(), want)
	}
	if !errors.Is(err, ErrChain) {
		t.Error("errors.Is(err, ErrChain) = false")
	}
	if errors.Is(err, ErrSignature) {
		t.Error("errors.Is(err, ErrSignature) = true")
	}
	wrapped := errors.Join(errors.New("context"), err)
	if KindName(wrapped) != "chain" {
		t.Errorf("KindName = %q, want chain", KindName(wrapped))
	}
	if KindName(errors.New("other")) != "error" {
		t.Error("KindName of a foreign error is not \"error\"")
	}
}

func TestMalformedUnwraps(t *testing.T) {
	cause := errors.New("short buffer")
	err := Malformed("REPORT", "report is 12 bytes, want 1184", cause)
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, cause) {
		t.Errorf("Malformed does not match its kind and cause: %v", err)
	}
}

func TestHexJSON(t *testing.T) {
	for _, tt := range []struct {
		in   any
		want string
	}{
		{Hex{0xAB, 0x01}, `"ab01"`},
		{Hex(nil), `""`},
		{struct {
			H Hex `json:"h"`
		}{Hex{0x00, 0xff}}, `{"h":"00ff"}`},
	} {
		b, err := json.Marshal(tt.in)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%#v) = %s, %v; want %s", tt.in, b, err, tt.want)
		}
	}
	var h Hex
	if err := json.Unmarshal([]byte(`"AB01"`), &h); err != nil || h.String() != "ab01" {
		t.Fatalf("Unmarshal = %s, %v", h, err)
	}
	if err := json.Unmarshal([]byte(`"abc"`), &h); err == nil {
		t.Error("odd-length hex accepted")
	}
	if v, err := ParseHex("0xff00"); err != nil || v.String() != "ff00" {
		t.Errorf("ParseHex = %s, %v", v, err)
	}
	if _, err := ParseHex("zz"); err == nil || !strings.Contains(err.Error(), `"zz"`) {
		t.Errorf("ParseHex error %v does not name the value", err)
	}
}

func selfSigned(t *testing.T, org string) *x509.Certificate {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	tmpl := testcert.Template(1, "root "+org, true, x509.KeyUsageCertSign)
	tmpl.Subject.Organization = []string{org}
	return testcert.Issue(t, tmpl, nil, &key.PublicKey, key)
}

func setOf(certs ...*x509.Certificate) *collateral.Set {
	s := &collateral.Set{}
	for _, c := range certs {
		s.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: c.Raw, Certificate: c})
	}
	return s
}

// scopedSetOf returns setOf(certs) with every item scoped to tees.
func scopedSetOf(tees []string, certs ...*x509.Certificate) *collateral.Set {
	s := setOf(certs...)
	s.ScopeTo(tees)
	return s
}

func TestRoots(t *testing.T) {
	vendor := selfSigned(t, "Vendor")
	caller := selfSigned(t, "Caller")
	other := selfSigned(t, "Other TEE")
	emulated := selfSigned(t, EmulatedOrganization)
	embedded := []*x509.Certificate{vendor}
	ctx := context.Background()
	both := setOf(caller)
	both.Merge(scopedSetOf([]string{"nitro"}, other))

	tests := []struct {
		name string
		opts Options
		want []*x509.Certificate
	}{
		{name: "root scoped to the TEE", opts: Options{Collateral: scopedSetOf([]string{"tpm", "snp"}, caller)}, want: []*x509.Certificate{caller}},
		{name: "root scoped to another TEE leaves embedded", opts: Options{Collateral: scopedSetOf([]string{"nitro"}, caller)}, want: []*x509.Certificate{vendor}},
		{name: "anchor scoped to another TEE leaves embedded", opts: Options{TrustAnchors: scopedSetOf([]string{"nitro"}, emulated)}, want: []*x509.Certificate{vendor}},
		{name: "anchor scoped to the TEE", opts: Options{TrustAnchors: scopedSetOf([]string{"snp"}, emulated)}, want: []*x509.Certificate{emulated}},
		{name: "unscoped root beside one scoped elsewhere", opts: Options{Collateral: both}, want: []*x509.Certificate{caller}},
		{name: "no caller roots uses embedded", opts: Options{}, want: []*x509.Certificate{vendor}},
		{name: "caller root replaces embedded", opts: Options{Collateral: setOf(caller)}, want: []*x509.Certificate{caller}},
		{name: "emulated root in collateral ignored", opts: Options{Collateral: setOf(emulated)}, want: []*x509.Certificate{vendor}},
		{name: "emulated root as trust anchor", opts: Options{TrustAnchors: setOf(emulated)}, want: []*x509.Certificate{emulated}},
		{name: "duplicates removed", opts: Options{Collateral: setOf(vendor, vendor)}, want: []*x509.Certificate{vendor}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Roots(ctx, tc.opts, collateral.Query{TEE: "snp"}, embedded)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d roots, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !got[i].Equal(tc.want[i]) {
					t.Errorf("root %d = %s, want %s", i, got[i].Subject, tc.want[i].Subject)
				}
			}
		})
	}

	if k := DescribeRoot(vendor, embedded).Kind; k != AnchorVendorRoot {
		t.Errorf("vendor root described as %s", k)
	}
	if k := DescribeRoot(caller, embedded).Kind; k != AnchorCallerRoot {
		t.Errorf("caller root described as %s", k)
	}
	if k := DescribeRoot(emulated, embedded).Kind; k != AnchorEmulatedRoot {
		t.Errorf("emulated root described as %s", k)
	}
}

// fakeVerifier recognizes data that starts with its prefix.
type fakeVerifier struct{ name, prefix string }

func (f fakeVerifier) Name() string { return f.name }
func (f fakeVerifier) Detect(data []byte) bool {
	return strings.HasPrefix(string(data), f.prefix)
}
func (f fakeVerifier) Verify(context.Context, Evidence, Options) (*Claims, error) {
	return &Claims{TEE: TEE(f.name)}, nil
}

func TestDetect(t *testing.T) {
	Register(fakeVerifier{name: "test-alpha", prefix: "ALPHA"})
	Register(fakeVerifier{name: "test-alphabet", prefix: "ALPHABET"})

	if v, err := Detect([]byte("ALPHA1")); err != nil || v.Name() != "test-alpha" {
		t.Errorf("Detect(ALPHA1) = %v, %v", v, err)
	}
	if _, err := Detect([]byte("ALPHABET")); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("Detect of ambiguous input: %v", err)
	}
	if _, err := Detect([]byte("none")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Detect of unknown input: %v", err)
	}
	c, err := Verify(context.Background(), Evidence{Format: "test-alphabet", Data: []byte("ALPHABET")}, Options{})
	if err != nil || c.TEE != "test-alphabet" {
		t.Errorf("Verify with a named format = %v, %v", c, err)
	}
	if _, err := Verify(context.Background(), Evidence{Format: "absent"}, Options{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Verify with an unknown format: %v", err)
	}
}

// panicVerifier panics on every call, standing in for a verifier bug.
type panicVerifier struct{}

func (panicVerifier) Name() string       { return "test-panic" }
func (panicVerifier) Detect([]byte) bool { panic("detect bug") }
func (panicVerifier) Verify(context.Context, Evidence, Options) (*Claims, error) {
	panic("verify bug")
}

func TestVerifyRecoversPanic(t *testing.T) {
	Register(panicVerifier{})

	c, err := Verify(context.Background(), Evidence{Format: "test-panic", Data: []byte{1}}, Options{})
	if c != nil {
		t.Errorf("claims %+v returned after a panic", c)
	}
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v, want ErrMalformed", err)
	}
	if !strings.Contains(err.Error(), "test-panic verifier failed") {
		t.Errorf("error %q does not name the verifier", err)
	}
	if _, err := Detect([]byte("no format")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("detection with a panicking detector: %v, want ErrUnsupported", err)
	}
}
