package dcap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// emulated returns an emulator, its collateral and trust anchors.
func emulated(t testing.TB, opts EmulatorOptions) (*Emulator, *collateral.Set, *collateral.Set) {
	t.Helper()
	e, err := NewEmulator(opts)
	if err != nil {
		t.Fatal(err)
	}
	set := e.Collateral()
	if len(set.Ignored) > 0 {
		t.Fatal(set.Ignored)
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})
	return e, set, anchors
}

func TestEmulatorQuotes(t *testing.T) {
	for _, tc := range []struct {
		tee     string
		version int
		debug   bool
	}{
		{"sgx", 3, false}, {"sgx", 4, false}, {"sgx", 5, false}, {"sgx", 4, true},
		{"tdx", 4, false}, {"tdx", 5, false}, {"tdx", 4, true},
	} {
		name := tc.tee + "-v" + string(rune('0'+tc.version))
		if tc.debug {
			name += "-debug"
		}
		t.Run(name, func(t *testing.T) {
			e, set, anchors := emulated(t, EmulatorOptions{TEE: tc.tee, QuoteVersion: tc.version, Debug: tc.debug})
			rd := []byte("emulated report data")
			ev, err := e.Attest(context.Background(), rd)
			if err != nil {
				t.Fatal(err)
			}
			// The TDX guest sends its CC event log beside the quote.
			ev.Aux, _ = e.EventLog(context.Background())
			v := NewVerifier()
			if !v.Detect(ev.Data) {
				t.Fatal("Detect rejected an emulated quote")
			}
			claims, err := v.Verify(context.Background(), *ev, attest.Options{Collateral: set, TrustAnchors: anchors})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !claims.Emulated || claims.TrustAnchor.Kind != attest.AnchorEmulatedRoot {
				t.Errorf("emulated %v, anchor %s; expected an emulated root", claims.Emulated, claims.TrustAnchor.Kind)
			}
			if string(claims.TEE) != tc.tee {
				t.Errorf("TEE %s, expected %s", claims.TEE, tc.tee)
			}
			if claims.TCB.Status != attest.TCBUpToDate {
				t.Errorf("TCB status %s, expected UpToDate", claims.TCB.Status)
			}
			if claims.Debug != tc.debug {
				t.Errorf("debug %v, expected %v", claims.Debug, tc.debug)
			}
			if !bytes.HasPrefix(claims.ReportData, rd) || len(claims.ReportData) != 64 {
				t.Errorf("report data %x does not start with %x", claims.ReportData, rd)
			}
			if !bytes.Equal(claims.Measurement, e.opts.Measurement) {
				t.Errorf("measurement %x, expected %x", claims.Measurement, e.opts.Measurement)
			}
			if claims.Attributes["quote_version"] != tc.version {
				t.Errorf("quote version %v, expected %d", claims.Attributes["quote_version"], tc.version)
			}
			for _, ch := range claims.Checks {
				// No nonce is passed, so its check records that it did
				// not run.
				if ch.Name == checkNonce && ch.Result == attest.CheckNotChecked {
					continue
				}
				if ch.Result != attest.CheckPassed {
					t.Errorf("check %s: %s %s", ch.Name, ch.Result, ch.Detail)
				}
			}
			if _, ok := claims.FindCheck(checkTCBEvaluation); !ok {
				t.Errorf("no %s check recorded", checkTCBEvaluation)
			}
			d := appraise.Appraise(claims, appraise.Options{AllowEmulated: true, AllowDebug: tc.debug})
			if !d.Accepted {
				t.Errorf("appraisal with emulation allowed rejected: %v", d.Err())
			}
			if d := appraise.Appraise(claims, appraise.Options{}); d.Accepted {
				t.Error("default appraisal accepted an emulated quote")
			}
		})
	}
}

func TestEmulatorRootOnlyAsAnchor(t *testing.T) {
	e, set, _ := emulated(t, EmulatorOptions{TEE: "sgx"})
	ev, err := e.Attest(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier()
	_, err = v.Verify(context.Background(), *ev, attest.Options{Collateral: set})
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("without a trust anchor: %v, expected a chain error", err)
	}
	set.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})
	_, err = v.Verify(context.Background(), *ev, attest.Options{Collateral: set})
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("with the development root among the collateral: %v, expected a chain error", err)
	}
}

func TestEmulatorSaveLoad(t *testing.T) {
	e, set, anchors := emulated(t, EmulatorOptions{TEE: "tdx", QuoteVersion: 5})
	dir := t.TempDir()
	if err := e.Save(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadEmulator(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Root().Equal(e.Root()) {
		t.Fatal("loaded emulator has another root")
	}
	ev, err := loaded.Attest(context.Background(), []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier().Verify(context.Background(), *ev, attest.Options{Collateral: set, TrustAnchors: anchors}); err != nil {
		t.Fatalf("quote of the reloaded emulator: %v", err)
	}
}

func TestLoadEmulatorMismatchedKey(t *testing.T) {
	a, _, _ := emulated(t, EmulatorOptions{TEE: "tdx"})
	b, _, _ := emulated(t, EmulatorOptions{TEE: "tdx"})
	dirB := t.TempDir()
	if err := b.Save(dirB); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		certFile, keyFile string
	}{
		{fileRoot, fileRootKey},
		{filePCKCA, filePCKCAKey},
		{filePCK, filePCKKey},
		{fileTCBSigner, fileTCBKey},
	}
	for _, tt := range tests {
		t.Run(tt.keyFile, func(t *testing.T) {
			dirA := t.TempDir()
			if err := a.Save(dirA); err != nil {
				t.Fatal(err)
			}
			key, err := os.ReadFile(filepath.Join(dirB, tt.keyFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dirA, tt.keyFile), key, 0o600); err != nil {
				t.Fatal(err)
			}

			_, err = LoadEmulator(dirA)
			if err == nil {
				t.Fatal("LoadEmulator accepted a key that does not match its certificate")
			}
			msg := err.Error()
			if !strings.Contains(msg, "does not match") {
				t.Errorf("error %q does not report the mismatch", msg)
			}
			if !strings.Contains(msg, filepath.Join(dirA, tt.keyFile)) {
				t.Errorf("error %q does not name the key file", msg)
			}
			if !strings.Contains(msg, filepath.Join(dirA, tt.certFile)) {
				t.Errorf("error %q does not name the certificate file", msg)
			}
			if !strings.Contains(msg, "create the emulator again") {
				t.Errorf("error %q does not name the fix", msg)
			}
		})
	}
}

func TestEmulatorCollateralExpires(t *testing.T) {
	e, set, anchors := emulated(t, EmulatorOptions{TEE: "sgx"})
	ev, _ := e.Attest(context.Background(), nil)
	claims, err := NewVerifier().Verify(context.Background(), *ev, attest.Options{At: time.Now().AddDate(0, 0, 31), Collateral: set, TrustAnchors: anchors})
	if !errors.Is(err, attest.ErrCollateralExpired) {
		t.Fatalf("31 days later: %v, expected expired collateral", err)
	}
	if claims == nil || claims.TCB.Status != attest.TCBUpToDate {
		t.Errorf("claims of expired collateral should still carry the evaluated status")
	}
}

func TestTDXAttesterAbsent(t *testing.T) {
	if _, err := os.Stat("/dev/tdx_guest"); err == nil {
		t.Skip("this machine has /dev/tdx_guest")
	}
	if _, err := os.Stat("/sys/kernel/config/tsm/report"); err == nil {
		t.Skip("this machine has configfs-tsm")
	}
	if _, err := OpenTDXAttester(); !errors.Is(err, attest.ErrNoDevice) {
		t.Fatalf("error %v, expected ErrNoDevice", err)
	}
}

// TestSGXAttesterGramineFiles runs the SGX attester on a directory laid out
// as Gramine's /dev/attestation, with the quote an emulated enclave wrote.
func TestSGXAttesterGramineFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := openSGXAttester(dir); !errors.Is(err, attest.ErrNoDevice) {
		t.Fatalf("empty directory: %v, expected ErrNoDevice", err)
	}
	e, _, _ := emulated(t, EmulatorOptions{TEE: "sgx"})
	ev, err := e.Attest(context.Background(), []byte("report data"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"attestation_type": []byte("dcap\n"), "quote": ev.Data} {
		if err := os.WriteFile(dir+"/"+name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := openSGXAttester(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Attest(context.Background(), []byte("report data"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, ev.Data) {
		t.Error("quote differs from the file")
	}
	written, err := os.ReadFile(dir + "/user_report_data")
	if err != nil || len(written) != 64 || !bytes.HasPrefix(written, []byte("report data")) {
		t.Errorf("user_report_data %q, %v", written, err)
	}
}

// TestVerifyConcurrent verifies quotes from several goroutines with one
// verifier, so that the race detector can check the shared caches.
func TestVerifyConcurrent(t *testing.T) {
	e, set, anchors := emulated(t, EmulatorOptions{TEE: "tdx"})
	v := NewVerifier()
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func(i int) {
			ev, err := e.Attest(context.Background(), []byte{byte(i)})
			if err == nil {
				_, err = v.Verify(context.Background(), *ev, attest.Options{Collateral: set, TrustAnchors: anchors})
			}
			errs <- err
		}(i)
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
