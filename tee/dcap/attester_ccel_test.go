package dcap

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-eventlog/tcg"

	"github.com/cloister-dev/cloister/attest"
)

// ccelAreaSize is the size of a small CCEL area. The CCEL file exposes the
// whole area, padding included.
const ccelAreaSize = 64 << 10

// padded returns log followed by pad bytes up to size bytes.
func padded(log []byte, pad byte, size int) []byte {
	return append(bytes.Clone(log), bytes.Repeat([]byte{pad}, size-len(log))...)
}

func TestTDXAttesterEventLog(t *testing.T) {
	emulatedLog, _ := emulatedEventLog()
	// encodeEventLog ends the log with 8 bytes of 0xFF padding.
	events := emulatedLog[:len(emulatedLog)-8]

	// A log whose events go on past MaxEventLogSize: 9 events of 512 KiB.
	huge := editedLog(func([]logEvent) []logEvent {
		var out []logEvent
		for range 9 {
			out = append(out, measuredEvent(4, tcg.EventTag, make([]byte, 512<<10)))
		}
		return out
	})

	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o400); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name    string
		path    string
		want    []byte
		wantErr string
		is      error
	}{
		{name: "0xFF padded area", path: write("ff", padded(events, 0xff, ccelAreaSize)), want: events},
		{name: "zero padded area", path: write("zero", padded(events, 0x00, ccelAreaSize)), want: events},
		{name: "no padding", path: write("exact", events), want: events},
		{name: "area past the limit", path: write("large", padded(events, 0xff, MaxEventLogSize+ccelAreaSize)), want: events},
		{name: "events past the limit", path: write("huge", huge), wantErr: "does not end within the first 4194304 bytes"},
		{name: "absent file", path: filepath.Join(dir, "absent"), wantErr: "no CC event log", is: fs.ErrNotExist},
		{name: "directory", path: dir, wantErr: "reading the CC event log"},
		{name: "ACPI table header", path: write("table", padded([]byte("CCEL"), 0, 56)), wantErr: "CCEL ACPI table"},
		{name: "empty file", path: write("empty", nil), wantErr: "fewer than the 32-byte header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &TDXAttester{eventLogPath: tc.path}
			got, err := a.EventLog(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("EventLog error %v, expected one containing %q", err, tc.wantErr)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("EventLog error %v does not wrap %v", err, tc.is)
				}
				if got != nil {
					t.Errorf("EventLog returned %d bytes with its error", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("EventLog: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("EventLog returned %d bytes, expected the %d bytes of the events", len(got), len(tc.want))
			}
		})
	}
}

// Root reads any file, so the unreadable case runs only as another user.
func TestTDXAttesterEventLogUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads a file of mode 0000")
	}
	emulatedLog, _ := emulatedEventLog()
	path := filepath.Join(t.TempDir(), "CCEL")
	if err := os.WriteFile(path, emulatedLog, 0o000); err != nil {
		t.Fatal(err)
	}
	got, err := (&TDXAttester{eventLogPath: path}).EventLog(context.Background())
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "run as root") {
		t.Errorf("EventLog error %v, expected a permission error that says to run as root", err)
	}
	if got != nil {
		t.Errorf("EventLog returned %d bytes with its error", len(got))
	}
}

// The log read from a padded CCEL file replays to the RTMRs of the
// emulated TD's quote.
func TestTDXAttesterEventLogReplays(t *testing.T) {
	emulatedLog, _ := emulatedEventLog()
	path := filepath.Join(t.TempDir(), "CCEL")
	if err := os.WriteFile(path, padded(emulatedLog, 0xff, ccelAreaSize), 0o400); err != nil {
		t.Fatal(err)
	}
	log, err := (&TDXAttester{eventLogPath: path}).EventLog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	claims, err := verifyWithEventLog(t, "tdx", log)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if check, _ := claims.FindCheck("event-log"); check.Result != attest.CheckPassed {
		t.Errorf("event-log check %s (%s), expected passed", check.Result, check.Detail)
	}
}

func TestTDXAttesterEventLogCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&TDXAttester{eventLogPath: "unused"}).EventLog(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("EventLog error %v, expected context.Canceled", err)
	}
}

func TestEmulatorEventLog(t *testing.T) {
	for _, tc := range []struct {
		tee     string
		wantLog bool
	}{{"tdx", true}, {"sgx", false}} {
		t.Run(tc.tee, func(t *testing.T) {
			e, err := NewEmulator(EmulatorOptions{TEE: tc.tee})
			if err != nil {
				t.Fatal(err)
			}
			log, err := e.EventLog(context.Background())
			if err != nil {
				t.Fatalf("EventLog: %v", err)
			}
			emulatedLog, _ := emulatedEventLog()
			want := emulatedLog
			if !tc.wantLog {
				want = nil
			}
			if !slices.Equal(log, want) {
				t.Errorf("EventLog returned %d bytes, expected %d", len(log), len(want))
			}
		})
	}
}
