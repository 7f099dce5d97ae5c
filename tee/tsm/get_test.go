package tsm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-configfs-tsm/report"

	"github.com/cloister-dev/cloister/internal/tsmtest"
)

// errInjected is the error that the fake kernel returns for the outblob.
var errInjected = errors.New("injected outblob error")

// racingSubsystem returns a fake report subsystem in which another writer
// changes the entry during the first races outblob reads, and a counter
// of the outblob reads.
func racingSubsystem(races int) (*faketsm.ReportSubsystem, *int) {
	reads := 0
	sub := fakeSubsystem(plainProvider.Name, func(entry *faketsm.ReportEntry) ([]byte, error) {
		reads++
		if reads <= races {
			entry.WriteGeneration++
		}
		return []byte("outblob"), nil
	})
	return sub, &reads
}

func TestGetRetriesGenerationRace(t *testing.T) {
	for races := 1; races < maxAttempts; races++ {
		sub, reads := racingSubsystem(races)
		resp, err := Get(tsmtest.NewClient(sub), &report.Request{InBlob: make([]byte, 64)})
		if err != nil {
			t.Fatalf("%d races: Get: %v", races, err)
		}
		if string(resp.OutBlob) != "outblob" {
			t.Errorf("%d races: outblob %q, want the last request's", races, resp.OutBlob)
		}
		if *reads != races+1 {
			t.Errorf("%d races: %d outblob reads, want %d", races, *reads, races+1)
		}
		if n := len(sub.Entries); n != 0 {
			t.Errorf("%d races: %d report entries left behind, want 0", races, n)
		}
	}
}

func TestGetGivesUpAfterMaxAttempts(t *testing.T) {
	sub, reads := racingSubsystem(maxAttempts)
	_, err := Get(tsmtest.NewClient(sub), &report.Request{InBlob: make([]byte, 64)})
	if err == nil {
		t.Fatal("Get returned a report although every attempt raced another writer")
	}
	if report.GetGenerationErr(err) == nil {
		t.Errorf("error %q does not wrap the generation error", err)
	}
	if !strings.Contains(err.Error(), "each of 3 attempts") {
		t.Errorf("error %q does not give the number of attempts", err)
	}
	if *reads != maxAttempts {
		t.Errorf("%d outblob reads, want %d", *reads, maxAttempts)
	}
	if n := len(sub.Entries); n != 0 {
		t.Errorf("%d report entries left behind, want 0", n)
	}
}

// An error other than a generation change is not retried.
func TestGetDoesNotRetryOtherErrors(t *testing.T) {
	reads := 0
	sub := fakeSubsystem(plainProvider.Name, func(*faketsm.ReportEntry) ([]byte, error) {
		reads++
		return nil, errInjected
	})
	_, err := Get(tsmtest.NewClient(sub), &report.Request{InBlob: make([]byte, 64)})
	if err == nil || !strings.Contains(err.Error(), errInjected.Error()) {
		t.Errorf("error %v, want the outblob read error", err)
	}
	if reads != 1 {
		t.Errorf("%d outblob reads, want 1", reads)
	}
}

// The attester rides out one race through Get.
func TestAttestRetriesGenerationRace(t *testing.T) {
	sub, reads := racingSubsystem(1)
	a, err := New(tsmtest.NewClient(sub), plainProvider)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), []byte("nonce"))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if string(ev.Data) != "outblob" {
		t.Errorf("evidence %q, want the outblob", ev.Data)
	}
	if *reads != 2 {
		t.Errorf("%d outblob reads, want 2", *reads)
	}
}

// listingClient is a configfs-tsm client whose report entries list the
// attribute files of dir, a stand-in for the kernel's configfs directory,
// because faketsm cannot list an entry.
type listingClient struct {
	configfsi.Client
	dir string
}

func (c listingClient) ReadDir(string) ([]os.DirEntry, error) { return os.ReadDir(c.dir) }

// attributeDir returns a directory with an empty file for each attribute.
func attributeDir(t *testing.T, attributes ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range attributes {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// entryAttributes are the attributes of a report entry whose provider has
// no auxblob.
var entryAttributes = []string{"generation", "inblob", "outblob", "privlevel", "privlevel_floor", "provider"}

// A report entry that lists no auxblob attribute gives a report without
// one, which fakeSubsystem's kernel would fail to read.
func TestGetWithoutAuxBlobAttribute(t *testing.T) {
	sub := fakeSubsystem(plainProvider.Name, func(*faketsm.ReportEntry) ([]byte, error) { return []byte("outblob"), nil })
	c := listingClient{Client: tsmtest.NewClient(sub), dir: attributeDir(t, entryAttributes...)}
	resp, err := Get(c, &report.Request{InBlob: make([]byte, 64), GetAuxBlob: true})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(resp.OutBlob) != "outblob" {
		t.Errorf("outblob %q, want the report", resp.OutBlob)
	}
	if resp.AuxBlob != nil {
		t.Errorf("auxblob %q, want none", resp.AuxBlob)
	}
	if n := len(sub.Entries); n != 0 {
		t.Errorf("%d report entries left behind, want 0", n)
	}
}

// An auxblob that the entry lists, or that the client cannot tell about,
// must be read, so a failed read fails the request.
func TestGetAuxBlobReadError(t *testing.T) {
	sub := fakeSubsystem(plainProvider.Name, func(*faketsm.ReportEntry) ([]byte, error) { return []byte("outblob"), nil })
	for _, tc := range []struct {
		name   string
		client configfsi.Client
	}{
		{"listed", listingClient{Client: tsmtest.NewClient(sub), dir: attributeDir(t, append(entryAttributes, "auxblob")...)}},
		{"not listable", tsmtest.NewClient(sub)},
	} {
		_, err := Get(tc.client, &report.Request{InBlob: make([]byte, 64), GetAuxBlob: true})
		if err == nil {
			t.Errorf("%s: Get returned a report although the auxblob read failed", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), "auxblob") {
			t.Errorf("%s: error %q does not name the auxblob", tc.name, err)
		}
	}
}

// The attester of a provider with an auxblob returns evidence without Aux
// when the entry has no auxblob attribute.
func TestAttestWithoutAuxBlobAttribute(t *testing.T) {
	sub := fakeSubsystem(fakeProvider.Name, func(*faketsm.ReportEntry) ([]byte, error) { return []byte("outblob"), nil })
	c := listingClient{Client: tsmtest.NewClient(sub), dir: attributeDir(t, entryAttributes...)}
	a, err := New(c, fakeProvider)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), []byte("nonce"))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if ev.Aux != nil {
		t.Errorf("aux %q, want none", ev.Aux)
	}
}
