package dcap

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/google/go-eventlog/tcg"
)

// EmulatedKernelCmdline is the kernel command line that the emulated TDX
// guest's event log measures the way GRUB does.
const EmulatedKernelCmdline = "console=hvc0 root=/dev/vda1 ro cloister.emulated=1"

// logEvent is one event of a CC event log to encode.
type logEvent struct {
	// mrIndex is the CC MR index: 1 to 4 for RTMR0 to RTMR3.
	mrIndex uint32
	typ     tcg.EventType
	digest  [48]byte
	data    []byte
}

// measuredEvent returns an event whose digest is the SHA-384 of data, as
// for EV_SEPARATOR and EV_EFI_ACTION events.
func measuredEvent(mrIndex uint32, typ tcg.EventType, data []byte) logEvent {
	return logEvent{mrIndex: mrIndex, typ: typ, digest: sha512.Sum384(data), data: data}
}

// emulatedEvents returns the events of the emulated TDX guest's boot, in
// the registers TDVF and GRUB use: firmware configuration in RTMR0, the
// boot application in RTMR1 and the kernel command line in RTMR2. RTMR3
// has no events and stays zero.
func emulatedEvents() []logEvent {
	separator := []byte{0, 0, 0, 0}
	return []logEvent{
		measuredEvent(1, tcg.PlatformConfigFlags, []byte("cloister emulated TD configuration")),
		measuredEvent(1, tcg.Separator, separator),
		measuredEvent(2, tcg.EFIAction, []byte(tcg.CallingEFIApplication)),
		{mrIndex: 2, typ: tcg.EFIBootServicesApplication, digest: sha512.Sum384([]byte("cloister emulated kernel image"))},
		measuredEvent(2, tcg.Separator, separator),
		measuredEvent(2, tcg.EFIAction, []byte(tcg.ExitBootServicesInvocation)),
		{mrIndex: 3, typ: tcg.Ipl, digest: sha512.Sum384([]byte(EmulatedKernelCmdline)),
			data: []byte("kernel_cmdline: " + EmulatedKernelCmdline)},
	}
}

// emulatedEventLog returns a copy of the emulated TDX guest's CC event log
// and the RTMRs that replaying it gives. Both are computed once, because
// every emulated TDX quote carries the RTMRs.
func emulatedEventLog() ([]byte, [4][48]byte) {
	log, rtmrs := emulatedEventLogOnce()
	return bytes.Clone(log), rtmrs
}

var emulatedEventLogOnce = sync.OnceValues(func() ([]byte, [4][48]byte) {
	events := emulatedEvents()
	return encodeEventLog(events), replayLogEvents(events)
})

// encodeEventLog encodes events as a TCG crypto-agile event log with SHA-384
// digests, as TDVF writes the CCEL area, and ends it with the 8 bytes of
// 0xFF padding that follow the last event in that area.
func encodeEventLog(events []logEvent) []byte {
	le := binary.LittleEndian
	var spec []byte
	spec = append(spec, specIDSignature...)
	spec = le.AppendUint32(spec, 0) // platformClass: client
	spec = append(spec, 0, 2, 0, 2) // versionMinor, versionMajor, errata, uintnSize (64-bit)
	spec = le.AppendUint32(spec, 1) // numberOfAlgorithms
	spec = le.AppendUint16(spec, algSHA384)
	spec = le.AppendUint16(spec, sha512.Size384)
	spec = append(spec, 0) // vendorInfoSize

	var out []byte
	out = le.AppendUint32(out, 0)
	out = le.AppendUint32(out, eventTypeNoAction)
	out = append(out, make([]byte, 20)...)
	out = le.AppendUint32(out, uint32(len(spec)))
	out = append(out, spec...)
	for _, e := range events {
		out = le.AppendUint32(out, e.mrIndex)
		out = le.AppendUint32(out, uint32(e.typ))
		out = le.AppendUint32(out, 1)
		out = le.AppendUint16(out, algSHA384)
		out = append(out, e.digest[:]...)
		out = le.AppendUint32(out, uint32(len(e.data)))
		out = append(out, e.data...)
	}
	return append(out, slices.Repeat([]byte{0xff}, 8)...)
}

// replayLogEvents extends RTMR0 to RTMR3 from zero with the events'
// digests.
func replayLogEvents(events []logEvent) [4][48]byte {
	var rtmrs [4][48]byte
	for _, e := range events {
		r := e.mrIndex - ccMRIndexRTMR0
		h := sha512.New384()
		h.Write(rtmrs[r][:])
		h.Write(e.digest[:])
		h.Sum(rtmrs[r][:0])
	}
	return rtmrs
}
