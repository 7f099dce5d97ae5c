package dcap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/tsmtest"
)

// fakeTDXTSM returns a configfs-tsm report subsystem whose provider is
// provider and whose outblob is what outblob returns for the inblob.
func fakeTDXTSM(provider string, outblob func(inblob []byte) ([]byte, error)) *faketsm.ReportSubsystem {
	return tsmtest.NewReportSubsystem(provider, func(entry *faketsm.ReportEntry) ([]byte, error) {
		return outblob(entry.InAttrs["inblob"].Value)
	})
}

func TestTDXAttesterConfigfsTSM(t *testing.T) {
	e, set, anchors := emulated(t, EmulatorOptions{TEE: "tdx"})
	sub := fakeTDXTSM("tdx_guest", func(inblob []byte) ([]byte, error) {
		ev, err := e.Attest(context.Background(), inblob)
		if err != nil {
			return nil, err
		}
		return ev.Data, nil
	})
	a, err := newTDXTSMAttester(tsmtest.NewClient(sub))
	if err != nil {
		t.Fatalf("newTDXTSMAttester: %v", err)
	}
	ev, err := a.Attest(context.Background(), []byte("tsm nonce"))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if n := len(sub.Entries); n != 0 {
		t.Errorf("%d configfs-tsm report entries left behind, expected 0", n)
	}
	claims, err := NewVerifier().Verify(context.Background(), *ev, attest.Options{Collateral: set, TrustAnchors: anchors})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !strings.HasPrefix(string(claims.ReportData), "tsm nonce") {
		t.Errorf("ReportData %q does not start with the requested report data", claims.ReportData)
	}
}

func TestTDXAttesterOtherProviderIsNoDevice(t *testing.T) {
	sub := fakeTDXTSM("sev_guest", nil)
	_, err := newTDXTSMAttester(tsmtest.NewClient(sub))
	if !errors.Is(err, attest.ErrNoDevice) {
		t.Errorf("error %v, expected ErrNoDevice for provider sev_guest", err)
	}
	if n := len(sub.Entries); n != 0 {
		t.Errorf("%d configfs-tsm report entries left behind, expected 0", n)
	}
}

func TestTDXAttesterRejectsBadOutblob(t *testing.T) {
	tdx, _, _ := emulated(t, EmulatorOptions{TEE: "tdx"})
	sgx, _, _ := emulated(t, EmulatorOptions{TEE: "sgx"})
	stale, err := tdx.Attest(context.Background(), []byte("another request"))
	if err != nil {
		t.Fatal(err)
	}
	sgxQuote, err := sgx.Attest(context.Background(), []byte("tsm nonce"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		outblob []byte
		want    string
	}{
		{"empty outblob", nil, "0 bytes that are not a valid quote"},
		{"short outblob", stale.Data[:100], "100 bytes that are not a valid quote"},
		{"quote of another request", stale.Data, "REPORTDATA"},
		{"SGX quote", sgxQuote.Data, "sgx quote, not a tdx quote"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := fakeTDXTSM("tdx_guest", func([]byte) ([]byte, error) { return tc.outblob, nil })
			a, err := newTDXTSMAttester(tsmtest.NewClient(sub))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := a.Attest(context.Background(), []byte("tsm nonce"))
			tsmtest.CheckOutblobRejected(t, ev, err, tc.want)
			if n := len(sub.Entries); n != 0 {
				t.Errorf("%d configfs-tsm report entries left behind, expected 0", n)
			}
		})
	}
}

func TestTDXAttesterOutblobError(t *testing.T) {
	sub := fakeTDXTSM("tdx_guest", func([]byte) ([]byte, error) { return nil, errors.New("quote generation failed") })
	a, err := newTDXTSMAttester(tsmtest.NewClient(sub))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Attest(context.Background(), []byte("tsm nonce"))
	if err == nil {
		t.Error("Attest succeeded, expected the outblob error")
	} else if !strings.Contains(err.Error(), "outblob") {
		t.Errorf("error %v, expected one that names the outblob", err)
	}
	if n := len(sub.Entries); n != 0 {
		t.Errorf("%d configfs-tsm report entries left behind, expected 0", n)
	}
}

// TestSGXAttesterRejectsOtherQuote gives the SGX attester a Gramine
// directory whose quote file does not match the report data written. That
// happens when another thread of the enclave wrote user_report_data
// meanwhile.
func TestSGXAttesterRejectsOtherQuote(t *testing.T) {
	sgx, _, _ := emulated(t, EmulatorOptions{TEE: "sgx"})
	tdx, _, _ := emulated(t, EmulatorOptions{TEE: "tdx"})
	stale, err := sgx.Attest(context.Background(), []byte("another thread"))
	if err != nil {
		t.Fatal(err)
	}
	tdxQuote, err := tdx.Attest(context.Background(), []byte("report data"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		quote []byte
		want  string
	}{
		{"empty quote", nil, "0 bytes that are not a valid quote"},
		{"quote of another thread", stale.Data, "REPORTDATA"},
		{"TDX quote", tdxQuote.Data, "tdx quote, not a sgx quote"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range map[string][]byte{"attestation_type": []byte("dcap\n"), "quote": tc.quote} {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			a, err := openSGXAttester(dir)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := a.Attest(context.Background(), []byte("report data"))
			if err == nil {
				t.Fatalf("Attest returned %d bytes of evidence, expected an error", len(ev.Data))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, "quote")) {
				t.Errorf("error %q does not name the quote file", err)
			}
		})
	}
}

func TestTDXAttesterDeadline(t *testing.T) {
	block := make(chan struct{})
	release := time.AfterFunc(2*time.Second, func() { close(block) })
	// Release the request that Attest abandons when the test ends.
	t.Cleanup(func() {
		if release.Stop() {
			close(block)
		}
	})
	sub := fakeTDXTSM("tdx_guest", func([]byte) ([]byte, error) {
		<-block
		return nil, errors.New("no quote")
	})
	a, err := newTDXTSMAttester(tsmtest.NewClient(sub))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = a.Attest(ctx, []byte("tsm nonce"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, expected context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Attest returned after %v, expected soon after the 50 ms deadline", elapsed)
	}
}

// TestSGXAttesterDeadline makes the quote file a FIFO, whose open blocks
// until a writer appears, like a quote that the quoting enclave is slow
// to return.
func TestSGXAttesterDeadline(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "attestation_type"), []byte("dcap\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	quotePath := filepath.Join(dir, "quote")
	if err := syscall.Mkfifo(quotePath, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Opening the FIFO for writing lets the reader finish: after 2 s, or
	// when the test ends and before its directory is removed.
	openWriter := func() {
		if f, err := os.OpenFile(quotePath, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
	}
	release := time.AfterFunc(2*time.Second, openWriter)
	t.Cleanup(func() {
		if release.Stop() {
			openWriter()
		}
	})

	a, err := openSGXAttester(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = a.Attest(ctx, []byte("report data"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, expected context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Attest returned after %v, expected soon after the 50 ms deadline", elapsed)
	}
}

// A report entry that another writer changed once is requested again.
func TestTDXAttesterConfigfsTSMRetriesRace(t *testing.T) {
	e, set, anchors := emulated(t, EmulatorOptions{TEE: "tdx"})
	reads := 0
	sub := fakeTDXTSM("tdx_guest", func(inblob []byte) ([]byte, error) {
		ev, err := e.Attest(context.Background(), inblob)
		if err != nil {
			return nil, err
		}
		return ev.Data, nil
	})

	readAttr := sub.ReadAttr
	sub.ReadAttr = func(entry *faketsm.ReportEntry, attr string) ([]byte, error) {
		if attr == "outblob" {
			reads++
			if reads == 1 {
				// Another writer changes the entry during the first request.
				entry.WriteGeneration++
			}
		}
		return readAttr(entry, attr)
	}

	a, err := newTDXTSMAttester(tsmtest.NewClient(sub))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), []byte("tsm nonce"))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}

	if reads != 2 {
		t.Errorf("%d outblob reads, expected 2", reads)
	}
	if n := len(sub.Entries); n != 0 {
		t.Errorf("%d configfs-tsm report entries left behind, expected 0", n)
	}

	if _, err := NewVerifier().Verify(context.Background(), *ev, attest.Options{Collateral: set, TrustAnchors: anchors}); err != nil {
		t.Errorf("Verify: %v", err)
	}
}
