package nvgpu

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// rimResult verifies the generated report of g against the RIM files.
func rimResult(t *testing.T, g *testGPU, s *rimSigner, files map[string][]byte) (*attest.Claims, error) {
	t.Helper()
	return verifyHex(t, g.build(t, g.parts(testNonce(7))), rimOptions(t, g, s, files))
}

func checkOf(t *testing.T, c *attest.Claims, name string) attest.Check {
	t.Helper()
	if c == nil {
		t.Fatalf("no claims to find check %s in", name)
	}
	ch, ok := c.FindCheck(name)
	if !ok {
		t.Fatalf("check %s not recorded: %+v", name, c.Checks)
	}
	return ch
}

func TestRIMMatch(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	claims, err := rimResult(t, g, s, map[string][]byte{
		"driver.swidtag": s.sign(t, driver.xml(), true),
		"vbios.swidtag":  s.sign(t, vbios.xml(), true),
	})
	if err != nil {
		t.Fatal(err)
	}
	ch := checkOf(t, claims, "rim")
	if ch.Result != attest.CheckPassed {
		t.Fatalf("rim check %+v, expected passed", ch)
	}
	if !strings.Contains(ch.Detail, "3 active measurements") {
		t.Errorf("rim detail %q does not count the 3 active measurements", ch.Detail)
	}
	rims, _ := claims.Attributes["rims"].([]map[string]any)
	if len(rims) != 2 {
		t.Fatalf("Attributes[rims] = %v, expected the driver and VBIOS RIMs", claims.Attributes["rims"])
	}
	if rims[0]["component"] != componentDriver || rims[1]["component"] != componentVBIOS {
		t.Errorf("rims components %v and %v, expected driver then VBIOS", rims[0]["component"], rims[1]["component"])
	}
	if len(claims.Collateral) != 2 {
		t.Errorf("collateral %+v, expected the two RIMs", claims.Collateral)
	}
}

func TestRIMDERSignatureValue(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	claims, err := rimResult(t, g, s, map[string][]byte{
		"driver.swidtag": s.sign(t, driver.xml(), false),
		"vbios.swidtag":  s.sign(t, vbios.xml(), false),
	})
	if err != nil {
		t.Fatal(err)
	}
	if ch := checkOf(t, claims, "rim"); ch.Result != attest.CheckPassed {
		t.Fatalf("rim check %+v, expected passed", ch)
	}
}

func TestRIMGoldenMismatch(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	vbios.measurements[1] = golden(2, bytesOf(0x33, 48))
	claims, err := rimResult(t, g, s, map[string][]byte{
		"driver.swidtag": s.sign(t, driver.xml(), true),
		"vbios.swidtag":  s.sign(t, vbios.xml(), true),
	})
	if !errors.Is(err, attest.ErrAppraisal) {
		t.Fatalf("error %v, expected ErrAppraisal", err)
	}
	for _, want := range []string{"index 2", "block 3", attest.Hex(block(3)).String(), attest.Hex(bytesOf(0x33, 48)).String(), "vbios.swidtag"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	ch := checkOf(t, claims, "rim")
	if ch.Result != attest.CheckFailed {
		t.Fatalf("rim check %+v, expected failed", ch)
	}
	if !strings.Contains(ch.Detail, "measurement index 2") {
		t.Errorf("rim detail %q does not name index 2", ch.Detail)
	}
}

func TestRIMMissingBlock(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	driver.measurements = append(driver.measurements, golden(9, bytesOf(9, 48)))
	_, err := rimResult(t, g, s, map[string][]byte{
		"driver.swidtag": s.sign(t, driver.xml(), true),
		"vbios.swidtag":  s.sign(t, vbios.xml(), true),
	})
	if !errors.Is(err, attest.ErrAppraisal) {
		t.Fatalf("error %v, expected ErrAppraisal", err)
	}
	if !strings.Contains(err.Error(), "value no block") {
		t.Errorf("error %q does not say the report has no block 10", err)
	}
}

func TestRIMBadSignature(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	signed := s.sign(t, vbios.xml(), true)
	// Replace the golden value of index 2 after signing, so that the RIM
	// would match a report of other firmware.
	altered := bytes.Replace(signed, []byte(attest.Hex(block(3)).String()), []byte(attest.Hex(bytesOf(0x44, 48)).String()), 1)
	if bytes.Equal(altered, signed) {
		t.Fatal("the golden value of index 2 was not found in the signed RIM")
	}
	claims, err := rimResult(t, g, s, map[string][]byte{
		"driver.swidtag": s.sign(t, driver.xml(), true),
		"vbios.swidtag":  altered,
	})
	if !errors.Is(err, attest.ErrSignature) {
		t.Fatalf("error %v, expected ErrSignature", err)
	}
	if !strings.Contains(err.Error(), "vbios.swidtag") {
		t.Errorf("error %q does not name the file", err)
	}
	if ch := checkOf(t, claims, "rim"); ch.Result != attest.CheckFailed {
		t.Errorf("rim check %+v, expected failed", ch)
	}
}

func TestRIMExpiredSigner(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(-time.Minute))
	driver, _ := matchingRIMs()
	_, err := rimResult(t, g, s, map[string][]byte{"driver.swidtag": s.sign(t, driver.xml(), true)})
	if !errors.Is(err, attest.ErrCollateralExpired) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("error %v, expected an expired RIM signer", err)
	}
	if !strings.Contains(err.Error(), "--at") {
		t.Errorf("error %q does not give the fix", err)
	}
}

// The certificates that a RIM carries are checked at the verification
// time, and a certificate outside its window is expired collateral.
func TestRIMCertificateValidity(t *testing.T) {
	driver, _ := matchingRIMs()
	s := newRIMSigner(t, testTime.Add(1000*24*time.Hour))
	data := s.sign(t, driver.xml(), true)
	roots := []*x509.Certificate{s.root}
	tests := []struct {
		name string
		at   time.Time
		want []string
	}{
		{"signer not yet valid", testTime.Add(-48 * time.Hour), []string{`"CN=Test RIM Signer" is not yet valid`, "system clock"}},
		{"intermediate expired", testTime.Add(400 * 24 * time.Hour), []string{`Test Reference Value GH100 CA,O=Cloister test" expired`, "fetch the current RIM"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyRIM(data, roots, tc.at)
			if !errors.Is(err, attest.ErrCollateralExpired) {
				t.Fatalf("error %v, expected ErrCollateralExpired", err)
			}
			err = rimError("driver.swidtag", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := verifyRIM(data, roots, testTime); err != nil {
		t.Errorf("inside every window: %v", err)
	}
}

// rimError picks the fix by the kind of the error, not by its text.
func TestRIMErrorFixByKind(t *testing.T) {
	const expiredFix = "fetch the current RIM of this version"
	tests := []struct {
		name    string
		err     error
		want    string
		notWant string
	}{
		{"chain error that says expired", attest.Errorf(attest.ErrChain, "certificate chain", "certificate %q expired", "Test Root"), "--trust-anchor", expiredFix},
		{"expired collateral", attest.Errorf(attest.ErrCollateralExpired, "Signature", "outside its window").WithFix(expiredFix), expiredFix, "--trust-anchor"},
		{"signature", attest.Errorf(attest.ErrSignature, "Signature", "does not verify"), "fetch it again", expiredFix},
		{"plain error", errors.New("invalid XML"), "remove it from the collateral", expiredFix},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := rimError("x.swidtag", tc.err).Error()
			if !strings.Contains(got, tc.want) {
				t.Errorf("error %q does not contain %q", got, tc.want)
			}
			if strings.Contains(got, tc.notWant) {
				t.Errorf("error %q contains %q", got, tc.notWant)
			}
			if !strings.Contains(got, "RIM x.swidtag") {
				t.Errorf("error %q does not name the file", got)
			}
		})
	}
}

func TestRIMUntrustedRoot(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, _ := matchingRIMs()
	// The signer's root is not a trust anchor, and the copy of it inside
	// the RIM must not make it one.
	_, err := rimResult(t, g, nil, map[string][]byte{"driver.swidtag": s.sign(t, driver.xml(), true)})
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error %v, expected ErrChain", err)
	}
}

func TestRIMOtherVersionIgnored(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, _ := matchingRIMs()
	driver.version = "535.104.05"
	claims, err := rimResult(t, g, s, map[string][]byte{"other.swidtag": s.sign(t, driver.xml(), true)})
	if err != nil {
		t.Fatal(err)
	}
	if ch := checkOf(t, claims, "rim"); ch.Result != attest.CheckNotChecked || ch.Required {
		t.Errorf("rim check %+v, expected not checked and not required", ch)
	}
	if len(claims.Warnings) != 1 || !strings.Contains(claims.Warnings[0], "other.swidtag") {
		t.Errorf("warnings %q, expected one naming other.swidtag", claims.Warnings)
	}
}

func TestRIMOtherProductIgnored(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, _ := matchingRIMs()
	driver.product = "GB100"
	claims, err := rimResult(t, g, s, map[string][]byte{"gb100.swidtag": s.sign(t, driver.xml(), true)})
	if err != nil {
		t.Fatal(err)
	}
	if ch := checkOf(t, claims, "rim"); ch.Result != attest.CheckNotChecked {
		t.Errorf("rim check %+v, expected not checked", ch)
	}
}

func TestRIMNotSupplied(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	claims, err := rimResult(t, g, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := checkOf(t, claims, "rim")
	if ch.Result != attest.CheckNotChecked || ch.Required {
		t.Errorf("rim check %+v, expected not checked and not required", ch)
	}
	for _, want := range []string{"--collateral nvidia-gpu=", "driver 550.90.07 (RIM ID NV_GPU_DRIVER_GH100_550.90.07)", "VBIOS 96.00.9f.00.01;"} {
		if !strings.Contains(ch.Detail, want) {
			t.Errorf("rim detail %q does not contain %q", ch.Detail, want)
		}
	}
}

func TestRIMOnlyDriverNotChecked(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, _ := matchingRIMs()
	claims, err := rimResult(t, g, s, map[string][]byte{"driver.swidtag": s.sign(t, driver.xml(), true)})
	if err != nil {
		t.Fatal(err)
	}
	ch := checkOf(t, claims, "rim")
	if ch.Result != attest.CheckNotChecked {
		t.Fatalf("rim check %+v, expected not checked without a VBIOS RIM", ch)
	}
	if !strings.Contains(ch.Detail, "no VBIOS RIM") {
		t.Errorf("rim detail %q does not name the missing VBIOS RIM", ch.Detail)
	}
}

// A RIM whose measurements are all inactive vouches for nothing, so the
// check does not pass on the other RIM alone.
func TestRIMWithoutActiveMeasurementNotChecked(t *testing.T) {
	inactive := func(r testRIM) testRIM {
		out := r
		out.measurements = nil
		for _, m := range r.measurements {
			m.Active = false
			out.measurements = append(out.measurements, m)
		}
		return out
	}
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	for _, tc := range []struct {
		name          string
		driver, vbios testRIM
		want          []string
	}{
		{"inactive VBIOS RIM", driver, inactive(vbios), []string{"1 active measurements match", "no active measurement in the VBIOS RIM"}},
		{"both inactive", inactive(driver), inactive(vbios), []string{"no active measurement in the driver RIM", "no active measurement in the VBIOS RIM"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := rimResult(t, g, s, map[string][]byte{
				"driver.swidtag": s.sign(t, tc.driver.xml(), true),
				"vbios.swidtag":  s.sign(t, tc.vbios.xml(), true),
			})
			if err != nil {
				t.Fatal(err)
			}
			ch := checkOf(t, claims, "rim")
			if ch.Result != attest.CheckNotChecked {
				t.Fatalf("rim check %+v, expected not checked", ch)
			}
			for _, w := range tc.want {
				if !strings.Contains(ch.Detail, w) {
					t.Errorf("rim detail %q does not contain %q", ch.Detail, w)
				}
			}
		})
	}
}

func TestRIMActiveIndexConflict(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	driver.measurements = append(driver.measurements, golden(1, block(2)))
	_, err := rimResult(t, g, s, map[string][]byte{
		"driver.swidtag": s.sign(t, driver.xml(), true),
		"vbios.swidtag":  s.sign(t, vbios.xml(), true),
	})
	if !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "index 1") {
		t.Fatalf("error %v, expected a conflict at index 1", err)
	}
}

func TestRIMTwoForOneVersion(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, _ := matchingRIMs()
	other := driver
	other.measurements = []GoldenMeasurement{golden(0, block(1), bytesOf(0x55, 48))}
	_, err := rimResult(t, g, s, map[string][]byte{
		"a.swidtag": s.sign(t, driver.xml(), true),
		"b.swidtag": s.sign(t, other.xml(), true),
	})
	if err == nil || !strings.Contains(err.Error(), "two different driver RIMs") {
		t.Fatalf("error %v, expected two RIMs for one version to be rejected", err)
	}
}

func TestRIMNonSWIDXMLIgnored(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	claims, err := rimResult(t, g, nil, map[string][]byte{"notes.xml": []byte("<notes>GPU RIMs go here</notes>")})
	if err != nil {
		t.Fatal(err)
	}
	if ch := checkOf(t, claims, "rim"); ch.Result != attest.CheckNotChecked {
		t.Errorf("rim check %+v, expected not checked", ch)
	}
	if len(claims.Warnings) != 1 || !strings.Contains(claims.Warnings[0], "notes.xml") {
		t.Errorf("warnings %q, expected one naming notes.xml", claims.Warnings)
	}
}

func TestRIMUnsignedRejected(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	driver, _ := matchingRIMs()
	_, err := rimResult(t, g, nil, map[string][]byte{"driver.swidtag": []byte(driver.xml())})
	if !errors.Is(err, attest.ErrSignature) {
		t.Fatalf("error %v, expected ErrSignature for a RIM without a signature", err)
	}
}

func TestParseRIMRules(t *testing.T) {
	driver, _ := matchingRIMs()
	good := driver.xml()
	tests := []struct {
		name string
		data string
		want string
	}{
		{"oversize", good + strings.Repeat(" ", MaxRIMSize), "limit"},
		{"doctype", `<!DOCTYPE x [<!ENTITY a "b">]>` + good, "DOCTYPE"},
		{"deep", strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40), "deeper"},
		{"not SWID", "<SoftwareIdentity/>", "not a SWID"},
		{"unclosed", good[:len(good)-30], "invalid XML"},
		{"no version", strings.Replace(good, `colloquialVersion="550.90.07"`, "", 1), "colloquialVersion"},
		{"repeated index", strings.Replace(good, `index="5"`, `index="0"`, 1), "twice"},
		{"bad active", strings.Replace(good, `active="True"`, `active="yes"`, 1), "active"},
		{"short hash", strings.Replace(good, `ns2:Hash0="01`, `ns2:Hash0="`, 1), "size"},
		{"missing hash", strings.Replace(good, `alternatives="1"`, `alternatives="2"`, 1), "Hash1"},
		{"hash in other namespace", strings.Replace(good, `xmlns:ns2="`+sha384Namespace, `xmlns:ns2="urn:other`, 1), "SHA-384"},
		{"index out of range", strings.Replace(good, `index="5"`, `index="255"`, 1), "index"},
		{"empty payload", strings.Join(strings.Split(good, "\n")[:4], "\n") + "\n</ns0:Payload></SoftwareIdentity>", "no measurements"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRIM([]byte(tc.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	rim, err := ParseRIM([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if rim.Version != "550.90.07" || rim.Product != "GH100" || len(rim.Measurements) != 2 {
		t.Errorf("parsed %+v", rim)
	}
}

// TestRIMNVIDIASamples verifies NVIDIA's sample RIMs from the nvtrust
// repository, which this repository does not copy. Set
// CLOISTER_NVTRUST_SAMPLES to a directory holding the files of
// guest_tools/gpu_verifiers/local_gpu_verifier/src/verifier/samples/.
func TestRIMNVIDIASamples(t *testing.T) {
	dir := os.Getenv("CLOISTER_NVTRUST_SAMPLES")
	if dir == "" {
		t.Skip("CLOISTER_NVTRUST_SAMPLES is not set")
	}
	roots, err := embeddedRIMRoots()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.swidtag"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .swidtag files in %s: %v", dir, err)
	}
	// The signing certificates of the samples expire in June 2025.
	at := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rim, err := verifyRIM(data, roots, at)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		t.Logf("%s: %s %s, %d measurements, signed by %s until %s", filepath.Base(f), rim.Product, rim.Version,
			len(rim.Measurements), rim.chain[0].Subject.CommonName, rim.chain[0].NotAfter.Format(time.DateOnly))
		altered := bytes.Replace(data, []byte(`active="False"`), []byte(`active="True"`), 1)
		if _, err := verifyRIM(altered, roots, at); !errors.Is(err, attest.ErrSignature) {
			t.Errorf("%s with an inactive measurement made active: error %v, expected ErrSignature", filepath.Base(f), err)
		}
	}
}

func TestRIMRootsExcludeDeviceRoot(t *testing.T) {
	device, err := embeddedRoots()
	if err != nil {
		t.Fatal(err)
	}
	rimRoot, err := embeddedRIMRoots()
	if err != nil {
		t.Fatal(err)
	}
	s := newRIMSigner(t, testTime.Add(time.Hour))
	q := collateral.Query{TEE: string(attest.TEENVGPU), At: testTime}
	anchors := func(certs ...*x509.Certificate) attest.Options {
		set := &collateral.Set{}
		for _, c := range certs {
			set.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: c.Raw, Certificate: c})
		}
		return attest.Options{At: testTime, TrustAnchors: set, Collateral: &collateral.Set{}}
	}

	roots, err := rimRoots(context.Background(), anchors(device[0]), q, device)
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || !roots[0].Equal(rimRoot[0]) {
		t.Errorf("with the device root as the only anchor, RIM roots %d, expected only the embedded RIM root", len(roots))
	}

	roots, err = rimRoots(context.Background(), anchors(device[0], s.root), q, device)
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || !roots[0].Equal(s.root) {
		t.Errorf("with a caller root, RIM roots %d, expected only the caller root", len(roots))
	}
}

// The pinned CoRIM signing root never anchors a device chain: alone, it
// leaves the embedded device roots, and beside another root it is dropped.
func TestWithoutRIMRoot(t *testing.T) {
	rim, err := embeddedRIMRoots()
	if err != nil {
		t.Fatal(err)
	}
	device, err := embeddedRoots()
	if err != nil {
		t.Fatal(err)
	}
	other := newTestGPU(t, nil, nil).root
	for _, tc := range []struct {
		name  string
		roots []*x509.Certificate
		want  []*x509.Certificate
	}{
		{"only the RIM root", rim, device},
		{"the RIM root beside another", append([]*x509.Certificate{other}, rim...), []*x509.Certificate{other}},
		{"no RIM root", []*x509.Certificate{other}, []*x509.Certificate{other}},
	} {
		got, err := withoutRIMRoot(tc.roots, device)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) || !got[0].Equal(tc.want[0]) {
			t.Errorf("%s: roots %v, want %v", tc.name, subjects(got), subjects(tc.want))
		}
	}
}

func subjects(certs []*x509.Certificate) []string {
	var out []string
	for _, c := range certs {
		out = append(out, c.Subject.String())
	}
	return out
}
