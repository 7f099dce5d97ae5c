// Package tsmtest provides a fake configfs-tsm report subsystem for tests
// of the attesters built on the tee/tsm package.
package tsmtest

import (
	"crypto/rand"
	"os"
	"strings"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/cloister-dev/cloister/attest"
)

// NewReportSubsystem returns a fake configfs-tsm report subsystem whose
// provider attribute is provider and whose outblob attribute is what
// outblob returns for the report entry. Reading any other read-only
// attribute fails with os.ErrNotExist, so a test that serves an auxblob
// wraps ReadAttr.
func NewReportSubsystem(provider string, outblob func(entry *faketsm.ReportEntry) ([]byte, error)) *faketsm.ReportSubsystem {
	return &faketsm.ReportSubsystem{
		// The fake computes read-only attributes only while the read and
		// write generations differ, but a kernel serves "provider" at any
		// time. Starting at write generation 1 gives the fake that
		// behavior.
		MakeEntry: func() *faketsm.ReportEntry {
			return &faketsm.ReportEntry{WriteGeneration: 1, InAttrs: map[string]*faketsm.ReportAttributeState{
				"inblob": {}, "privlevel": {Value: []byte("0\n")},
			}}
		},
		CheckInAttr: func(*faketsm.ReportEntry, string, []byte) error { return nil },
		ReadAttr: func(entry *faketsm.ReportEntry, attr string) ([]byte, error) {
			switch attr {
			case "provider":
				return []byte(provider + "\n"), nil
			case "outblob":
				return outblob(entry)
			}
			return nil, os.ErrNotExist
		},
		Random: rand.Reader,
	}
}

// NewClient returns a configfs-tsm client whose report subsystem is sub.
func NewClient(sub *faketsm.ReportSubsystem) configfsi.Client {
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}

// CheckOutblobRejected fails t unless ev and err, the results of an
// attester's Attest call, are an error that contains want and names the
// configfs-tsm outblob.
func CheckOutblobRejected(t testing.TB, ev *attest.Evidence, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Attest returned %d bytes of evidence, expected an error", len(ev.Data))
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if !strings.Contains(err.Error(), "configfs-tsm outblob") {
		t.Errorf("error %q does not name the configfs-tsm outblob", err)
	}
}
