package dcap

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-eventlog/tcg"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// verifyWithEventLog verifies a fresh quote of an emulated TEE with aux
// as its event log.
func verifyWithEventLog(t *testing.T, tee string, aux []byte) (*attest.Claims, error) {
	t.Helper()
	e, set, anchors := emulated(t, EmulatorOptions{TEE: tee})
	ev, err := e.Attest(context.Background(), []byte("nonce"))
	if err != nil {
		t.Fatal(err)
	}
	ev.Aux = aux
	return NewVerifier().Verify(context.Background(), *ev, attest.Options{Collateral: set, TrustAnchors: anchors})
}

// editedLog returns the emulated event log with edit applied to its
// events.
func editedLog(edit func([]logEvent) []logEvent) []byte {
	return encodeEventLog(edit(emulatedEvents()))
}

func TestVerifyEventLog(t *testing.T) {
	emulatedLog, rtmrs := emulatedEventLog()
	tampered := editedLog(func(events []logEvent) []logEvent {
		events[3].digest[0] ^= 1 // the boot application, in RTMR1
		return events
	})
	extra := editedLog(func(events []logEvent) []logEvent {
		return append(events, measuredEvent(4, tcg.EventTag, []byte("unexpected")))
	})
	mrtd := editedLog(func(events []logEvent) []logEvent {
		return append(events, measuredEvent(0, tcg.PostCode, []byte("firmware")))
	})
	zeroPadded := append(bytes.TrimRight(emulatedLog, "\xff"), make([]byte, 4096)...)

	for _, tc := range []struct {
		name   string
		tee    string
		log    []byte
		result attest.CheckResult
		kind   error
		want   []string
	}{
		{name: "matching log", tee: "tdx", log: emulatedLog, result: attest.CheckPassed},
		{name: "zero padding", tee: "tdx", log: zeroPadded, result: attest.CheckPassed},
		{name: "absent log", tee: "tdx", log: nil, result: attest.CheckNotChecked},
		{name: "tampered digest", tee: "tdx", log: tampered, result: attest.CheckFailed, kind: attest.ErrBinding,
			want: []string{"cc_eventlog", "RTMR1", hex.EncodeToString(rtmrs[1][:]), "send the event log of the boot"}},
		{name: "extra RTMR3 event", tee: "tdx", log: extra, result: attest.CheckFailed, kind: attest.ErrBinding,
			want: []string{"1 RTMR3 events", strings.Repeat("00", 48)}},
		{name: "event for MRTD", tee: "tdx", log: mrtd, result: attest.CheckFailed, kind: attest.ErrMalformed,
			want: []string{"cc_eventlog", "CC MR index 0", "MRTD"}},
		{name: "truncated log", tee: "tdx", log: emulatedLog[:len(emulatedLog)/2], result: attest.CheckFailed, kind: attest.ErrMalformed,
			want: []string{"cc_eventlog", "truncated", "/sys/firmware/acpi/tables/data/CCEL"}},
		{name: "garbage log", tee: "tdx", log: []byte(strings.Repeat("not an event log ", 8)), result: attest.CheckFailed, kind: attest.ErrMalformed,
			want: []string{"cc_eventlog", "Spec ID Event03"}},
		{name: "oversized log", tee: "tdx", log: make([]byte, MaxEventLogSize+1), result: attest.CheckFailed, kind: attest.ErrUnsupported,
			want: []string{"cc_eventlog", "4 MiB"}},
		{name: "SGX with log", tee: "sgx", log: emulatedLog, result: attest.CheckFailed, kind: attest.ErrUnsupported,
			want: []string{"cc_eventlog", "only TDX guests"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := verifyWithEventLog(t, tc.tee, tc.log)
			if tc.kind == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Fatalf("Verify: %v, expected %v", err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if claims == nil {
				t.Fatal("no claims returned")
			}
			check, ok := claims.FindCheck(checkEventLog)
			if !ok {
				t.Fatalf("no %s check recorded", checkEventLog)
			}
			if check.Result != tc.result {
				t.Errorf("check %s: %s (%s), expected %s", check.Name, check.Result, check.Detail, tc.result)
			}
			if check.Required {
				t.Errorf("check %s is required; an absent log must not reject", check.Name)
			}
		})
	}
}

func TestEventLogClaims(t *testing.T) {
	claims, err := verifyWithEventLog(t, "tdx", func() []byte { log, _ := emulatedEventLog(); return log }())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := claims.Attributes["kernel_cmdline"]; ok {
		t.Error("a kernel_cmdline claim is set, although the log's prefixes are not measured")
	}

	events, ok := claims.Attributes[AttrEventLog].([]EventLogEvent)
	if !ok {
		t.Fatalf("event_log is %T, expected []EventLogEvent", claims.Attributes[AttrEventLog])
	}
	if !slices.ContainsFunc(events, func(e EventLogEvent) bool { return e.Register == "rtmr2" && e.Text == EmulatedKernelCmdline }) {
		t.Errorf("no rtmr2 event has the text %q: %+v", EmulatedKernelCmdline, events)
	}
	want := emulatedEvents()
	if len(events) != len(want) {
		t.Fatalf("%d events, expected %d", len(events), len(want))
	}
	for i, e := range events {
		if e.Register != []string{"", "rtmr0", "rtmr1", "rtmr2", "rtmr3"}[want[i].mrIndex] {
			t.Errorf("event %d register %s, expected CC MR index %d", i, e.Register, want[i].mrIndex)
		}
		if !bytes.Equal(e.Digest, want[i].digest[:]) {
			t.Errorf("event %d digest %s", i, e.Digest)
		}
	}

	if events[2].Type != "EV_EFI_ACTION" || string(events[2].Data) != tcg.CallingEFIApplication {
		t.Errorf("event 2: %s %q, expected the EV_EFI_ACTION %q", events[2].Type, events[2].Data, tcg.CallingEFIApplication)
	}
	// The boot application's data is not what its digest covers, and the
	// command line's data carries a prefix, so neither is copied.
	if events[3].Data != nil || events[6].Data != nil {
		t.Errorf("unproven event data copied: %q, %q", events[3].Data, events[6].Data)
	}

	for i := range 4 {
		if _, ok := claims.Measurements[rtmrName(i)]; !ok {
			t.Errorf("measurement %s missing", rtmrName(i))
		}
	}
}

func rtmrName(i int) string { return fmt.Sprintf("rtmr%d", i) }

func TestEventLogAbsentKeepsRTMRs(t *testing.T) {
	claims, err := verifyWithEventLog(t, "tdx", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, rtmrs := emulatedEventLog()
	for i := range rtmrs {
		if got := claims.Measurements[rtmrName(i)]; !bytes.Equal(got, rtmrs[i][:]) {
			t.Errorf("%s %s, expected %x", rtmrName(i), got, rtmrs[i])
		}
	}
	if _, ok := claims.Attributes[AttrEventLog]; ok {
		t.Error("event_log claim set without an event log")
	}
}

func TestEventLogTooManyEvents(t *testing.T) {
	var events []logEvent
	for range MaxEventLogEvents + 1 {
		events = append(events, measuredEvent(4, tcg.EventTag, []byte("event")))
	}
	_, err := ReplayEventLog(encodeEventLog(events), replayLogEvents(events))
	if !errors.Is(err, attest.ErrUnsupported) || !strings.Contains(err.Error(), "more than 512 events") {
		t.Fatalf("ReplayEventLog: %v, expected the 512-event limit", err)
	}
}

func TestGRUBText(t *testing.T) {
	text := "(hd0,gpt3)/boot/vmlinuz root=/dev/vda1 ro"
	for _, tc := range []struct {
		name   string
		index  int
		data   string
		digest string
		ok     bool
	}{
		{"kernel command line", 3, "kernel_cmdline: " + text, text, true},
		{"hashed with NUL", 3, "kernel_cmdline: " + text + "\x00", text + "\x00", true},
		{"stray bytes after NUL", 3, "grub_kernel_cmdline " + text + "\x00_", text, true},
		{"grub.cfg command", 3, "grub_cmd: " + text, text, true},
		{"digest of other text", 3, "kernel_cmdline: " + text, "other", false},
		{"unknown prefix", 3, "grub_cmd " + text, text, false},
		{"other register", 2, "kernel_cmdline: " + text, text, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum := sha512.Sum384([]byte(tc.digest))
			got, ok := grubText(tcg.Event{Index: tc.index, Type: tcg.Ipl, Data: []byte(tc.data), Digest: sum[:]})
			if ok != tc.ok {
				t.Fatalf("ok %v, expected %v", ok, tc.ok)
			}
			if ok && got != text {
				t.Errorf("text %q, expected %q", got, text)
			}
		})
	}
}

// TestEventLogRealTDX replays the event log of a Google COS 113 TDX guest,
// from go-eventlog's test data, against the RTMRs of the real quote of the
// same boot in the evidence corpus, and verifies the quote with it.
func TestEventLogRealTDX(t *testing.T) {
	log := goEventlogTestLog(t, "cos-113-intel-tdx.bin")
	for _, c := range corpus.Cases(t, "tdx") {
		q, err := ParseQuote(c.EvidenceBytes(t))
		if err != nil || q.TD == nil {
			continue
		}
		if _, err := ReplayEventLog(log, q.TD.RTMR); err != nil {
			continue
		}
		ev := attest.Evidence{Format: "dcap", Data: c.EvidenceBytes(t), Aux: log}
		claims, _ := NewVerifier().Verify(context.Background(), ev, c.Options(t))
		if claims == nil {
			t.Fatalf("%s: no claims", c.Name)
		}
		if check, _ := claims.FindCheck(checkEventLog); check.Result != attest.CheckPassed {
			t.Errorf("%s: check %s %s: %s", c.Name, checkEventLog, check.Result, check.Detail)
		}
		events, _ := claims.Attributes[AttrEventLog].([]EventLogEvent)
		if len(events) != 43 {
			t.Errorf("%s: %d events, expected 43", c.Name, len(events))
		}
		if !slices.ContainsFunc(events, func(e EventLogEvent) bool { return strings.HasPrefix(e.Text, "/syslinux/vmlinuz.A ") }) {
			t.Errorf("%s: no event has the text of GRUB's kernel command line", c.Name)
		}
		return
	}
	t.Skip("no TDX quote in the corpus matches the COS 113 event log")
}

// goEventlogTestLog reads a CC event log from the test data of the
// go-eventlog module in the module cache, skipping the test when the go
// command or the file is not available.
func goEventlogTestLog(t *testing.T, name string) []byte {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/go-eventlog").Output()
	if err != nil {
		t.Skipf("locating the go-eventlog module: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "testdata", "eventlogs", "ccel", name))
	if err != nil {
		t.Skipf("go-eventlog test data: %v", err)
	}
	return data
}

// FuzzReplayEventLog runs the parser and replay on mutated event logs
// against the emulated RTMRs. Any input must give an error or a replay
// whose claims build, never a panic.
func FuzzReplayEventLog(f *testing.F) {
	log, rtmrs := emulatedEventLog()
	f.Add(log)
	f.Add(log[:len(log)/2])
	f.Add(editedLog(func(events []logEvent) []logEvent { return events[:3] }))
	f.Add(editedLog(func(events []logEvent) []logEvent {
		return append(events, logEvent{mrIndex: 9, typ: 0x800000ff, data: []byte{1, 2, 3}})
	}))
	f.Add(encodeEventLog(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ReplayEventLog(data, rtmrs)
		if err != nil {
			return
		}
		addEventLogClaims(&attest.Claims{}, out)
	})
}
