package nvgpu

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// reissueDeviceChain replaces the device chain of e with one whose
// subjects lack attest.EmulatedOrganization, as a vendor's chain does, and
// keeps each GPU's leaf key, so that e still signs the reports.
func reissueDeviceChain(t *testing.T, e *Emulator) {
	t.Helper()
	notBefore, notAfter := time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0)
	template := func(cn string, ca bool) *x509.Certificate {
		c := &x509.Certificate{
			SerialNumber: serialNumber(),
			Subject:      pkix.Name{CommonName: cn, Organization: []string{"Test GPU Vendor"}},
			NotBefore:    notBefore, NotAfter: notAfter,
			KeyUsage:              x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true,
			SignatureAlgorithm:    x509.ECDSAWithSHA384,
		}
		if ca {
			c.IsCA = true
			c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
		return c
	}
	issueCA := func(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate) {
		key, err := newKey()
		if err != nil {
			t.Fatal(err)
		}
		tmpl := template(cn, true)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		cert, err := issue(tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		return key, cert
	}

	e.rootKey, e.root = issueCA("Test Device Identity CA", nil, nil)
	e.identityCAKey, e.identityCA = issueCA("Test GH100 Identity", e.root, e.rootKey)
	for _, g := range e.gpus {
		g.bromKey, g.brom = issueCA(emulatedChip+" A01 GSP BROM", e.identityCA, e.identityCAKey)
		tcbInfo, err := marshalTcbInfo(&g.leafKey.PublicKey, e.fwid)
		if err != nil {
			t.Fatal(err)
		}
		leaf := template(emulatedChip+" A01 GSP FMC LF", false)
		leaf.ExtraExtensions = []pkix.Extension{{Id: oidTCGDICETcbInfo, Value: tcbInfo}}
		if g.leaf, err = issue(leaf, g.brom, &g.leafKey.PublicKey, g.bromKey); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRIMsUnderDevelopmentRootEmulated(t *testing.T) {
	e := newEmulator(t, 2)
	reissueDeviceChain(t, e)
	nonce := emulatorNonce(t)

	claims, err := verifyEvidence(t, attestEmulator(t, e, nonce), emulatorOptions(t, e, nonce))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.TrustAnchor.Kind == attest.AnchorEmulatedRoot {
		t.Fatalf("device trust anchor kind %s: the reissued chain still ends at a development root", claims.TrustAnchor.Kind)
	}
	checkResult(t, claims, rimCheck, attest.CheckPassed)
	if !claims.Emulated {
		t.Error("claims not marked emulated, though a development root signed the RIMs that vouch for the GPU")
	}
	// The two GPUs share the driver and the VBIOS RIM, so each is warned
	// about once.
	warnings := 0
	for _, w := range claims.Warnings {
		if strings.Contains(w, "is signed under the development root") {
			warnings++
		}
	}
	if warnings != 2 {
		t.Errorf("%d development-root RIM warnings, expected 2: %q", warnings, claims.Warnings)
	}
	if d := appraise.Appraise(claims, appraise.Options{}); d.Accepted {
		t.Error("the default appraisal accepted a GPU whose RIMs a development root signed")
	}
}
