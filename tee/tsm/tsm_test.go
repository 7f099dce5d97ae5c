package tsm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/cloister-dev/cloister/attest"
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
