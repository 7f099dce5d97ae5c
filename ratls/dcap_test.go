package ratls

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/tee/dcap"
)

// RA-TLS certificates from emulated SGX and TDX quotes travel under
// Gramine's Intel quote tag and verify with the DCAP verifier.
func TestEmulatedDCAPCertificates(t *testing.T) {
	for _, tee := range []string{"sgx", "tdx"} {
		t.Run(tee, func(t *testing.T) {
			e, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: tee})
			if err != nil {
				t.Fatal(err)
			}
			cert := issue(t, e, IssueOptions{})
			anchors := &collateral.Set{}
			anchors.AddBytes("emulator root", e.Root().Raw)
			opts := attest.Options{TrustAnchors: anchors, Collateral: e.Collateral()}

			claims, ce, err := VerifyCertificate(context.Background(), cert.Leaf, opts)
			if err != nil {
				t.Fatalf("VerifyCertificate: %v", err)
			}
			if ce.Tag != TagIntelQuoteGramine {
				t.Errorf("tag %#x, want %d", ce.Tag, TagIntelQuoteGramine)
			}
			if string(claims.TEE) != tee || !claims.Emulated {
				t.Errorf("claims TEE %s emulated %v, want emulated %s", claims.TEE, claims.Emulated, tee)
			}
			if d := appraise.Appraise(claims, appraise.Options{AllowEmulated: true}); !d.Accepted {
				t.Errorf("appraisal rejected: %v", d.Err())
			}
		})
	}
}

// A certificate built as Gramine's legacy RA-TLS builds it (a raw SGX
// quote whose report data starts with SHA-256 of the SubjectPublicKeyInfo)
// verifies under the legacy rule, and fails under another key.
func TestGramineLegacyWithSGXQuote(t *testing.T) {
	e, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "sgx"})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rd := sha256.Sum256(spkiOf(t, key))
	ev, err := e.Attest(context.Background(), rd[:])
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSign(t, key, []pkix.Extension{{Id: OIDGramineLegacyQuote, Value: ev.Data}})
	anchors := &collateral.Set{}
	anchors.AddBytes("emulator root", e.Root().Raw)
	opts := attest.Options{TrustAnchors: anchors, Collateral: e.Collateral()}

	claims, ce, err := VerifyCertificate(context.Background(), cert, opts)
	if err != nil {
		t.Fatalf("VerifyCertificate: %v", err)
	}
	if ce.Layout != LayoutGramineLegacy || claims.Attributes[AttrBindingRule] != string(RuleLegacySPKI) {
		t.Errorf("layout %s rule %v, want %s %s", ce.Layout, claims.Attributes[AttrBindingRule], LayoutGramineLegacy, RuleLegacySPKI)
	}
	if _, _, err := VerifyCertificate(context.Background(), resign(t, cert), opts); !errors.Is(err, attest.ErrBinding) {
		t.Errorf("quote under another key: error %v, want a binding error", err)
	}
}

// An RA-TLS certificate of a TDX guest carries the quote but not the
// guest's CC event log, which the attester returns only from EventLog, so
// certificates stay small.
func TestTDXCertificateOmitsEventLog(t *testing.T) {
	e, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	eventLog, err := e.EventLog(context.Background())
	if err != nil || len(eventLog) == 0 {
		t.Fatalf("EventLog returned %d bytes and error %v, expected the emulated log", len(eventLog), err)
	}
	cert := issue(t, e, IssueOptions{})

	for _, ext := range cert.Leaf.Extensions {
		if ext.Id.Equal(OIDEndorsementManifest) {
			t.Errorf("the certificate has an endorsement extension of %d bytes", len(ext.Value))
		}
	}
	// The Spec ID event starts every CC event log.
	if bytes.Contains(cert.Leaf.Raw, []byte("Spec ID Event03")) {
		t.Error("the certificate contains a CC event log")
	}

	anchors := &collateral.Set{}
	anchors.AddBytes("emulator root", e.Root().Raw)
	claims, _, err := VerifyCertificate(context.Background(), cert.Leaf, attest.Options{TrustAnchors: anchors, Collateral: e.Collateral()})
	if err != nil {
		t.Fatalf("VerifyCertificate: %v", err)
	}
	if check, _ := claims.FindCheck("event-log"); check.Result != attest.CheckNotChecked {
		t.Errorf("event-log check %s, expected not-checked", check.Result)
	}
}
