package main

import (
	"bytes"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

func TestSplitTEEScope(t *testing.T) {
	tests := []struct {
		arg      string
		wantTEEs []string
		wantPath string
		wantErr  string
	}{
		{arg: "ark.pem", wantPath: "ark.pem"},
		{arg: "snp=ark.pem", wantTEEs: []string{"snp"}, wantPath: "ark.pem"},
		{arg: "sgx,tdx=intel/root.pem", wantTEEs: []string{"sgx", "tdx"}, wantPath: "intel/root.pem"},
		{arg: "dir/a=b.pem", wantPath: "dir/a=b.pem"},
		{arg: "Roots=1.pem", wantPath: "Roots=1.pem"},
		{arg: "dcap=root.pem", wantErr: `unknown TEE "dcap"`},
		{arg: "azure-vtpm=ark.pem", wantErr: "verified as snp or tdx"},
		{arg: "composite=ark.pem", wantErr: "nvidia-gpu for the GPUs"},
		{arg: "snp,=root.pem", wantErr: `unknown TEE ""`},
		{arg: "snp=", wantErr: `no path after "snp="`},
	}
	for _, tc := range tests {
		tees, path, err := splitTEEScope(tc.arg)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("splitTEEScope(%q) error = %v, want %q", tc.arg, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(tees, tc.wantTEEs) || path != tc.wantPath {
			t.Errorf("splitTEEScope(%q) = %v, %q, %v; want %v, %q", tc.arg, tees, path, err, tc.wantTEEs, tc.wantPath)
		}
	}
}

// newRoot returns a new self-signed certificate named name, with
// organization org when it is not empty.
func newRoot(t *testing.T, name, org string) *x509.Certificate {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	tmpl := testcert.Template(1, name, true, x509.KeyUsageCertSign)
	if org != "" {
		tmpl.Subject.Organization = []string{org}
	}
	return testcert.Issue(t, tmpl, nil, &key.PublicKey, key)
}

// writeRoot writes a new self-signed certificate as PEM to path.
func writeRoot(t *testing.T, path, name string) {
	t.Helper()
	cert := newRoot(t, name, "")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Each loaded item carries the scope of its argument or of the TEE-named
// subdirectory it came from.
func TestLoadCollateralScopes(t *testing.T) {
	dir := t.TempDir()
	writeRoot(t, filepath.Join(dir, "bundle", "any.pem"), "any")
	writeRoot(t, filepath.Join(dir, "bundle", "snp", "ark.pem"), "ark")
	writeRoot(t, filepath.Join(dir, "bundle", "notes", "other.pem"), "other")
	writeRoot(t, filepath.Join(dir, "nitro.pem"), "nitro")
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		args    []string
		want    map[string]string // subject CN to its TEEs, comma-separated
		wantErr string
	}{
		{name: "directory with a TEE subdirectory", args: []string{filepath.Join(dir, "bundle")},
			want: map[string]string{"any": "", "ark": "snp"}},
		{name: "scoped file", args: []string{"nitro,tpm=" + filepath.Join(dir, "nitro.pem")},
			want: map[string]string{"nitro": "nitro,tpm"}},
		{name: "scoped directory keeps its TEE subdirectory", args: []string{"snp=" + filepath.Join(dir, "bundle")},
			want: map[string]string{"any": "snp", "ark": "snp"}},
		{name: "scoped directory excludes its TEE subdirectory", args: []string{"tdx=" + filepath.Join(dir, "bundle")},
			wantErr: "excludes its subdirectory snp"},
		{name: "empty directory", args: []string{filepath.Join(dir, "empty")}, wantErr: "contains no certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := loadCollateral("--trust-anchor", tc.args, false)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, it := range set.Items {
				got[it.Certificate.Subject.CommonName] = strings.Join(it.TEEs, ",")
			}
			if len(got) != len(tc.want) {
				t.Errorf("loaded %v, want %v", got, tc.want)
			}
			for cn, tees := range tc.want {
				if g, ok := got[cn]; !ok || g != tees {
					t.Errorf("%s scoped to %q (loaded: %v), want %q", cn, g, ok, tees)
				}
			}
		})
	}
}

// serve warns about each unscoped root and key, emulated ones included,
// and about nothing else.
func TestWarnUnscopedAnchors(t *testing.T) {
	item := func(source string, cert *x509.Certificate, tees ...string) *collateral.Item {
		return &collateral.Item{Kind: collateral.KindCertificate, Source: source, Raw: cert.Raw, Certificate: cert, TEEs: tees}
	}
	root := newRoot(t, "caller root", "")
	anchors := &collateral.Set{}
	anchors.Add(item("unscoped.pem", root))
	anchors.Add(item("scoped.pem", root, "snp"))
	anchors.Add(item("emulated.pem", newRoot(t, "dev root", attest.EmulatedOrganization)))
	coll := &collateral.Set{}
	coll.Add(&collateral.Item{Kind: collateral.KindPublicKey, Source: "key.pem", Raw: []byte("spki")})
	coll.Add(&collateral.Item{Kind: collateral.KindCRL, Source: "crl.der", Raw: []byte("crl")})

	var logs bytes.Buffer
	warnUnscopedAnchors(slog.New(slog.NewJSONHandler(&logs, nil)), anchors, coll)
	for source, want := range map[string]bool{"unscoped.pem": true, "key.pem": true, "scoped.pem": false, "emulated.pem": true, "crl.der": false} {
		if got := strings.Contains(logs.String(), `"source":"`+source+`"`); got != want {
			t.Errorf("warning about %s: %v, want %v:\n%s", source, got, want, logs.String())
		}
	}
}

// A file named in --collateral that holds no collateral is an error that
// gives the loader's reason, also where an empty directory is allowed.
func TestLoadCollateralRejectsUnrecognizedFile(t *testing.T) {
	dir := t.TempDir()
	text := writeFile(t, filepath.Join(dir, "notes.txt"), "not collateral")
	if _, err := loadCollateral("--collateral", []string{dir}, true); err != nil {
		t.Errorf("a directory of other files, with allowEmpty: %v", err)
	}
	for _, arg := range []string{text, "nvidia-gpu=" + text} {
		_, err := loadCollateral("--collateral", []string{arg}, true)
		if err == nil || !strings.Contains(err.Error(), "notes.txt: not a DER certificate") {
			t.Errorf("loadCollateral(%q) error %v, want the file's reason", arg, err)
		}
	}
}
