package nvgpu

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// unusableFiles are generated RIM files for the GPU of newTestGPU (GH100,
// driver 550.90.07, VBIOS 96.00.9F.00.01), usable and unusable.
type unusableFiles struct {
	driver, vbios []byte
	// expiredOther is a RIM of driver 535.104.05 whose signer expired.
	expiredOther []byte
	// expiredOtherChip has the GPU's driver version, but product GB100,
	// and its signer expired.
	expiredOtherChip []byte
	// expiredDriver has the GPU's driver version, and its signer expired.
	expiredDriver []byte
	// alteredVBIOS has the GPU's VBIOS version and a golden value changed
	// after signing, from a value the report does not carry to the one it
	// carries. Used, it would make the check pass.
	alteredVBIOS []byte
	// truncated is a driver RIM cut short, so no version can be read.
	truncated []byte
}

func newUnusableFiles(t *testing.T, s *rimSigner) unusableFiles {
	t.Helper()
	expired := s.withLeaf(t, 14, testTime.Add(-time.Minute))
	driver, vbios := matchingRIMs()
	other := driver
	other.version = "535.104.05"
	otherChip := driver
	otherChip.product = "GB100"

	wrongVBIOS := vbios
	wrongVBIOS.measurements = []GoldenMeasurement{vbios.measurements[0], golden(2, bytesOf(0x33, 48))}
	signedWrong := s.sign(t, wrongVBIOS.xml(), true)
	altered := bytes.Replace(signedWrong, []byte(attest.Hex(bytesOf(0x33, 48)).String()), []byte(attest.Hex(block(3)).String()), 1)
	if bytes.Equal(altered, signedWrong) {
		t.Fatal("the golden value of index 2 was not found in the signed VBIOS RIM")
	}
	signedDriver := s.sign(t, driver.xml(), true)
	return unusableFiles{
		driver:           signedDriver,
		vbios:            s.sign(t, vbios.xml(), true),
		expiredOther:     expired.sign(t, other.xml(), true),
		expiredOtherChip: expired.sign(t, otherChip.xml(), true),
		expiredDriver:    expired.sign(t, driver.xml(), true),
		alteredVBIOS:     altered,
		truncated:        signedDriver[:len(signedDriver)/2],
	}
}

func TestRIMUnusableFiles(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	f := newUnusableFiles(t, s)
	tests := []struct {
		name  string
		files map[string][]byte
		// result is the expected rim check result, and kind the
		// expected error kind, nil for no error.
		result attest.CheckResult
		kind   error
		// warnings are expected in claims.Warnings, one per entry, each
		// containing every string of the entry.
		warnings [][]string
		// detail lists strings that the rim check detail contains.
		detail []string
	}{
		{
			name:     "other version skipped beside usable pair",
			files:    map[string][]byte{"driver.swidtag": f.driver, "vbios.swidtag": f.vbios, "old.swidtag": f.expiredOther},
			result:   attest.CheckPassed,
			warnings: [][]string{{"RIM old.swidtag (product GH100, version 535.104.05)", "skipped", "matches no GPU", "expired"}},
			detail:   []string{"3 active measurements match"},
		},
		{
			name:     "other version alone",
			files:    map[string][]byte{"old.swidtag": f.expiredOther},
			result:   attest.CheckNotChecked,
			warnings: [][]string{{"old.swidtag", "matches no GPU", "expired"}},
			detail:   []string{"no supplied RIM has the version"},
		},
		{
			name:     "other chip skipped",
			files:    map[string][]byte{"driver.swidtag": f.driver, "vbios.swidtag": f.vbios, "gb100.swidtag": f.expiredOtherChip},
			result:   attest.CheckPassed,
			warnings: [][]string{{"RIM gb100.swidtag (product GB100, version 550.90.07)", "matches no GPU"}},
		},
		{
			name:     "expired driver beside usable sibling",
			files:    map[string][]byte{"driver.swidtag": f.driver, "vbios.swidtag": f.vbios, "driver-old-signer.swidtag": f.expiredDriver},
			result:   attest.CheckPassed,
			warnings: [][]string{{"driver-old-signer.swidtag", "skipped", "usable RIM driver.swidtag", "expired"}},
		},
		{
			name:   "expired driver without sibling",
			files:  map[string][]byte{"vbios.swidtag": f.vbios, "driver-old-signer.swidtag": f.expiredDriver},
			result: attest.CheckFailed,
			kind:   attest.ErrCollateralExpired,
			detail: []string{"driver-old-signer.swidtag", "describes the driver of the GPU", "no usable driver RIM of that version remains", "expired"},
		},
		{
			// The altered RIM would match the report, so the check
			// passes if it is ever compared.
			name:   "altered VBIOS without sibling",
			files:  map[string][]byte{"driver.swidtag": f.driver, "vbios.swidtag": f.alteredVBIOS},
			result: attest.CheckFailed,
			kind:   attest.ErrSignature,
			detail: []string{"vbios.swidtag", "describes the VBIOS of the GPU", "does not verify"},
		},
		{
			name:     "altered VBIOS beside usable sibling",
			files:    map[string][]byte{"driver.swidtag": f.driver, "vbios.swidtag": f.vbios, "vbios-altered.swidtag": f.alteredVBIOS},
			result:   attest.CheckPassed,
			warnings: [][]string{{"vbios-altered.swidtag", "usable RIM vbios.swidtag", "does not verify"}},
		},
		{
			name:     "unreadable version beside usable pair",
			files:    map[string][]byte{"driver.swidtag": f.driver, "vbios.swidtag": f.vbios, "cut.swidtag": f.truncated},
			result:   attest.CheckPassed,
			warnings: [][]string{{"RIM cut.swidtag (version unreadable)", "every GPU has a usable driver and VBIOS RIM", "invalid XML"}},
		},
		{
			name:   "unreadable version without driver RIM",
			files:  map[string][]byte{"vbios.swidtag": f.vbios, "cut.swidtag": f.truncated},
			result: attest.CheckFailed,
			kind:   attest.ErrMalformed,
			detail: []string{"the GPU has no usable driver RIM", "cut.swidtag (version unreadable) may be that RIM", "invalid XML"},
		},
		{
			name:   "unreadable version alone",
			files:  map[string][]byte{"cut.swidtag": f.truncated},
			result: attest.CheckFailed,
			kind:   attest.ErrMalformed,
			detail: []string{"the GPU has no usable driver RIM", "cut.swidtag"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := rimResult(t, g, s, tc.files)
			if tc.kind == nil && err != nil {
				t.Fatalf("error %v, expected none", err)
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, expected %v", err, tc.kind)
			}
			ch := checkOf(t, claims, "rim")
			if ch.Result != tc.result {
				t.Errorf("rim check %+v, expected %s", ch, tc.result)
			}
			for _, want := range tc.detail {
				if !strings.Contains(ch.Detail, want) {
					t.Errorf("rim detail %q does not contain %q", ch.Detail, want)
				}
			}
			if len(claims.Warnings) != len(tc.warnings) {
				t.Fatalf("warnings %q, expected %d", claims.Warnings, len(tc.warnings))
			}
			for i, want := range tc.warnings {
				for _, w := range want {
					if !strings.Contains(claims.Warnings[i], w) {
						t.Errorf("warning %q does not contain %q", claims.Warnings[i], w)
					}
				}
			}
			if err != nil && !strings.Contains(err.Error(), "RIM ") {
				t.Errorf("error %q does not name the RIM file", err)
			}
		})
	}
}

// settleUnusableRIMs names the GPU that lacks a usable RIM when the
// evidence has several.
func TestSettleUnusableRIMsMultiGPU(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	gpu := func(driver string) *gpuResult {
		p := g.parts(testNonce(7))
		p.opaque = bytes.Replace(p.opaque, opaqueItem(3, []byte("550.90.07\x00")), opaqueItem(3, []byte(driver+"\x00")), 1)
		report, err := ParseReport(g.build(t, p))
		if err != nil {
			t.Fatal(err)
		}
		return &gpuResult{report: report, chain: []*x509.Certificate{g.leaf}}
	}
	results := []*gpuResult{gpu("550.90.07"), gpu("535.104.05")}
	full := func(name string) gpuRIMs {
		return gpuRIMs{driver: &loadedRIM{source: name + "-driver.swidtag"}, vbios: &loadedRIM{source: name + "-vbios.swidtag"}}
	}
	failure := errors.New("signature does not verify")
	expired535 := &unusableRIM{source: "535.swidtag", err: failure, product: "GH100", version: "535.104.05"}
	unreadable := &unusableRIM{source: "cut.swidtag", err: failure}
	tests := []struct {
		name     string
		selected []gpuRIMs
		unusable *unusableRIM
		// want is in the error and the detail when a GPU lacks the RIM,
		// or else in the one warning.
		want   []string
		failed bool
	}{
		{"version of GPU 1 without its RIM", []gpuRIMs{full("gpu0"), {vbios: full("gpu1").vbios}}, expired535, []string{"GPU 1", "driver"}, true},
		{"version of GPU 1 beside its RIM", []gpuRIMs{full("gpu0"), full("gpu1")}, expired535, []string{"usable RIM gpu1-driver.swidtag"}, false},
		{"unreadable while GPU 1 lacks VBIOS", []gpuRIMs{full("gpu0"), {driver: full("gpu1").driver}}, unreadable, []string{"GPU 1 has no usable VBIOS RIM"}, true},
		{"unreadable while every RIM is usable", []gpuRIMs{full("gpu0"), full("gpu1")}, unreadable, []string{"every GPU has a usable driver and VBIOS RIM"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			warnings, detail, err := settleUnusableRIMs(results, tc.selected, []*unusableRIM{tc.unusable})
			if !tc.failed {
				if err != nil || detail != "" {
					t.Fatalf("error %v with detail %q, expected none", err, detail)
				}
				if len(warnings) != 1 {
					t.Fatalf("warnings %q, expected one", warnings)
				}
				for _, w := range tc.want {
					if !strings.Contains(warnings[0], w) {
						t.Errorf("warning %q does not contain %q", warnings[0], w)
					}
				}
				return
			}
			if !errors.Is(err, failure) {
				t.Fatalf("error %v, expected the RIM's error", err)
			}
			if !strings.HasPrefix(err.Error(), "GPU 1: ") {
				t.Errorf("error %q does not name GPU 1", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(detail, w) {
					t.Errorf("detail %q does not contain %q", detail, w)
				}
			}
			if len(warnings) != 0 {
				t.Errorf("warnings %q, expected none", warnings)
			}
		})
	}
}

// When two unusable RIMs each leave a GPU without a RIM of their
// component, the first fails the check and the second is warned about.
func TestRIMUnusableSecondFailureWarned(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	f := newUnusableFiles(t, s)
	claims, err := rimResult(t, g, s, map[string][]byte{"vbios.swidtag": f.vbios, "driver-old-signer.swidtag": f.expiredDriver, "cut.swidtag": f.truncated})
	if err == nil {
		t.Fatal("no error, expected the first unusable RIM's error")
	}
	ch := checkOf(t, claims, "rim")
	if ch.Result != attest.CheckFailed {
		t.Fatalf("rim check %+v, expected failed", ch)
	}
	if len(claims.Warnings) != 1 {
		t.Fatalf("warnings %q, expected one", claims.Warnings)
	}
	for _, name := range []string{"driver-old-signer.swidtag", "cut.swidtag"} {
		inDetail, inWarning := strings.Contains(ch.Detail, name), strings.Contains(claims.Warnings[0], name)
		if inDetail == inWarning {
			t.Errorf("%s in detail %v and in warning %v, expected exactly one: detail %q, warning %q", name, inDetail, inWarning, ch.Detail, claims.Warnings[0])
		}
	}
	if !strings.Contains(err.Error(), "RIM driver-old-signer.swidtag") && !strings.Contains(err.Error(), "RIM cut.swidtag") {
		t.Errorf("error %q names neither unusable RIM", err)
	}
}
