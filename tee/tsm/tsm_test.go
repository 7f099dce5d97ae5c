package tsm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/internal/tsmtest"
	"github.com/cloister-dev/cloister/tee/cca"
)

// fakeProvider matches faketsm, whose provider attribute is "fake" and
// whose outblob is "privlevel: N\ninblob: HEX".
var fakeProvider = Provider{Name: "fake", Attester: "fake", Format: "fake", ReportDataSize: 64, AuxBlob: true}

func fakeClient() configfsi.Client {
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": faketsm.Report611(0)}}
}

func TestAttestThroughConfigfs(t *testing.T) {
	a, err := New(fakeClient(), fakeProvider)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), []byte{0xca, 0xfe})
	if err != nil {
		t.Fatal(err)
	}
	want := "inblob: cafe" + strings.Repeat("00", 62)
	if !strings.Contains(string(ev.Data), want) {
		t.Errorf("outblob %q does not carry the zero-padded report data %q", ev.Data, want)
	}
	if string(ev.Aux) != "auxblob" {
		t.Errorf("aux %q, want the auxblob", ev.Aux)
	}
	if ev.Format != "fake" {
		t.Errorf("format %q", ev.Format)
	}
}

func TestAttestRejectsLongReportData(t *testing.T) {
	a, err := New(fakeClient(), fakeProvider)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Attest(context.Background(), make([]byte, 65)); err == nil {
		t.Errorf("65 bytes of report data accepted")
	}
}

func TestOtherProviderIsNoDevice(t *testing.T) {
	_, err := New(fakeClient(), CCA)
	if !errors.Is(err, attest.ErrNoDevice) {
		t.Fatalf("error %v, want ErrNoDevice for a provider other than %s", err, CCA.Name)
	}
	if !strings.Contains(err.Error(), `"fake"`) {
		t.Errorf("error %q does not name the provider found", err)
	}
}

func TestOpenWithoutConfigfs(t *testing.T) {
	a, err := Open(CCA)
	if err == nil {
		// Only on an Arm CCA realm.
		t.Logf("configfs-tsm CCA provider present: %s", a.Name())
		return
	}
	if !errors.Is(err, attest.ErrNoDevice) {
		t.Errorf("error %v, want ErrNoDevice on a machine without CCA", err)
	}
}

func TestRegisteredAttester(t *testing.T) {
	found, errs := attest.OpenAttesters()
	for _, e := range errs {
		if strings.Contains(e.Error(), "tsm:") {
			t.Errorf("the CCA attester failed with an error other than ErrNoDevice: %v", e)
		}
	}
	for _, a := range found {
		if a.Name() == CCA.Attester {
			t.Logf("CCA attester present")
		}
	}
}

// fakeSubsystem returns a configfs-tsm report subsystem whose provider is
// provider and whose outblob is what outblob returns for the entry.
func fakeSubsystem(provider string, outblob func(entry *faketsm.ReportEntry) ([]byte, error)) *faketsm.ReportSubsystem {
	return tsmtest.NewReportSubsystem(provider, outblob)
}

// corpusToken returns the first accepted CCA token of the evidence corpus
// and its realm challenge.
func corpusToken(t *testing.T) (token, challenge []byte) {
	t.Helper()
	for _, c := range corpus.Cases(t, "cca") {
		if c.Negative() {
			continue
		}
		token = c.EvidenceBytes(t)
		parsed, err := cca.Parse(token)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		return token, parsed.RealmClaims.Challenge
	}
	t.Skip("the corpus has no accepted CCA token")
	return nil, nil
}

func TestCCAOutblobBindsInblob(t *testing.T) {
	token, challenge := corpusToken(t)
	sub := fakeSubsystem(CCA.Name, func(*faketsm.ReportEntry) ([]byte, error) { return token, nil })
	a, err := New(tsmtest.NewClient(sub), CCA)
	if err != nil {
		t.Fatal(err)
	}

	ev, err := a.Attest(context.Background(), challenge)
	if err != nil {
		t.Fatalf("Attest with the token's challenge: %v", err)
	}
	if !bytes.Equal(ev.Data, token) {
		t.Errorf("evidence is not the outblob")
	}

	other := bytes.Clone(challenge)
	other[0] ^= 1
	_, err = a.Attest(context.Background(), other)
	if err == nil {
		t.Fatal("Attest accepted a token whose challenge is not the inblob")
	}
	if !strings.Contains(err.Error(), "not the inblob") {
		t.Errorf("error %q does not say that the outblob does not bind the inblob", err)
	}
	if n := len(sub.Entries); n != 0 {
		t.Errorf("%d report entries left behind, want 0", n)
	}
}

func TestCCAInvalidOutblob(t *testing.T) {
	sub := fakeSubsystem(CCA.Name, func(*faketsm.ReportEntry) ([]byte, error) { return []byte("not a token"), nil })
	a, err := New(tsmtest.NewClient(sub), CCA)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Attest(context.Background(), []byte("challenge"))
	if err == nil {
		t.Fatal("Attest accepted an outblob that is not a CCA token")
	}
	if !strings.Contains(err.Error(), "invalid outblob") {
		t.Errorf("error %q does not name the invalid outblob", err)
	}
}

// plainProvider is fakeProvider without the auxblob, which fakeSubsystem
// does not serve.
var plainProvider = Provider{Name: "fake", Attester: "fake", Format: "fake", ReportDataSize: 64}

func TestAttestEmptyOutblob(t *testing.T) {
	sub := fakeSubsystem(plainProvider.Name, func(*faketsm.ReportEntry) ([]byte, error) { return nil, nil })
	a, err := New(tsmtest.NewClient(sub), plainProvider)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Attest(context.Background(), []byte("nonce")); err == nil || !strings.Contains(err.Error(), "empty outblob") {
		t.Errorf("error %v, want one about the empty outblob", err)
	}
	if n := len(sub.Entries); n != 0 {
		t.Errorf("%d report entries left behind, want 0", n)
	}
}

// TestAttestGenerationRace has another writer change the report entry
// while the outblob is generated, which the generation attribute shows.
func TestAttestGenerationRace(t *testing.T) {
	sub := fakeSubsystem(plainProvider.Name, func(entry *faketsm.ReportEntry) ([]byte, error) {
		entry.WriteGeneration++
		return []byte("outblob"), nil
	})
	a, err := New(tsmtest.NewClient(sub), plainProvider)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), []byte("nonce"))
	if err == nil {
		t.Fatalf("Attest returned %q after another writer changed the entry", ev.Data)
	}
	if !strings.Contains(err.Error(), "generation") {
		t.Errorf("error %q does not name the generation", err)
	}
	if n := len(sub.Entries); n != 0 {
		t.Errorf("%d report entries left behind, want 0", n)
	}
}

func TestAttestDeadline(t *testing.T) {
	block := make(chan struct{})
	release := time.AfterFunc(2*time.Second, func() { close(block) })
	// Release the request that Attest abandons when the test ends.
	t.Cleanup(func() {
		if release.Stop() {
			close(block)
		}
	})
	sub := fakeSubsystem(plainProvider.Name, func(*faketsm.ReportEntry) ([]byte, error) {
		<-block
		return []byte("outblob"), nil
	})
	a, err := New(tsmtest.NewClient(sub), plainProvider)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = a.Attest(ctx, []byte("nonce"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Attest returned after %v, want soon after the 50 ms deadline", elapsed)
	}
}
