package dcap

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"

	"github.com/cloister-dev/cloister/attest"
)

// Limits on a CC event log. The 12 real TDX logs in the test data of
// go-eventlog and Trustee (TDVF and td-shim firmware, GRUB and direct kernel
// boot, one with the attestation agent's events) have at most 157 measured
// events in at most 50 KB. Padding fills the rest of their CCEL areas of
// 64 KiB to 1 MiB. The limits keep a hostile log from costing much memory
// or making the claims large.
const (
	// MaxEventLogSize is the largest CC event log accepted, padding
	// included.
	MaxEventLogSize = 4 << 20
	// MaxEventLogEvents is the largest number of events accepted in one
	// CC event log, not counting the Spec ID event that starts it.
	MaxEventLogEvents = 512
)

// CC measurement register (CC MR) indices, as the event log's PCRIndex field
// contains them: 0 is MRTD and 1 to 4 are RTMR0 to RTMR3. go-eventlog's
// register.RTMR.Idx maps them so, citing the Intel TDX Guest-Hypervisor
// Communication Interface 1.5, and so does the guest-components TDX
// attester. The TDX module measures MRTD at build time, so no event can
// extend it.
const (
	ccMRIndexMRTD  = 0
	ccMRIndexRTMR0 = 1
	ccMRIndexRTMR3 = 4
)

// specIDSignature starts the data of the first event of a TCG crypto-agile
// event log (TCG PC Client Platform Firmware Profile, TCG_EfiSpecIDEvent).
var specIDSignature = []byte("Spec ID Event03\x00")

const (
	// sha1EventHeaderSize is the size of the first event's header in the
	// TCG 1.2 layout: PCRIndex, EventType, a SHA-1 digest and EventSize.
	sha1EventHeaderSize = 4 + 4 + 20 + 4
	// specIDAlgorithmsOffset is the offset of numberOfAlgorithms in the
	// Spec ID event data: signature, platformClass, four version bytes.
	specIDAlgorithmsOffset = 16 + 4 + 4
	// maxSpecIDAlgorithms bounds the digest algorithms a log may declare,
	// well above the five that firmware uses (SHA-1, SHA-256, SHA-384,
	// SHA-512 and SM3).
	maxSpecIDAlgorithms = 16
	algSHA384           = 0x000c
	eventTypeNoAction   = 0x00000003
)

// ReplayedEventLog is a CC event log whose replay matched RTMR0 to RTMR3 of
// a verified quote.
type ReplayedEventLog struct {
	// Events are the measured events in log order: every event that
	// extended an RTMR, so each digest is proven by the quote.
	Events []tcg.Event
}

// ReplayEventLog parses raw, a TCG crypto-agile event log in the CCEL
// layout, and replays its SHA-384 event digests into RTMR0 to RTMR3,
// each starting from zero. It returns an error unless every replayed
// register equals rtmrs, so a register that the log has no events for must
// be zero. The log may end with the 0xFF or 0x00 padding of the CCEL area;
// everything after the first 8 bytes of padding is ignored.
//
// Events at CC MR index 0 (MRTD) or above 4, events without a SHA-384
// digest, logs larger than MaxEventLogSize and logs with more than
// MaxEventLogEvents events are rejected. EV_NO_ACTION events
// extend nothing, as the TCG specification defines.
func ReplayEventLog(raw []byte, rtmrs [4][48]byte) (*ReplayedEventLog, error) {
	if len(raw) > MaxEventLogSize {
		return nil, attest.Errorf(attest.ErrUnsupported, "cc_eventlog", "the event log has %d bytes, more than the limit of %d bytes (%d MiB)", len(raw), MaxEventLogSize, MaxEventLogSize>>20).
			WithFix("send the CCEL data as the guest reads it from /sys/firmware/acpi/tables/data/CCEL, without other data appended")
	}
	end, err := eventLogEnd(raw)
	if err != nil {
		return nil, err
	}
	parsed, err := tcg.ParseEventLog(raw[:end], tcg.ParseOpts{})
	if err != nil {
		return nil, malformedEventLog("not a TCG crypto-agile event log", err)
	}
	events := parsed.Events(register.HashSHA384)
	if err := replayEvents(events, rtmrs); err != nil {
		return nil, err
	}

	// go-eventlog replays the log a second time, as a guard against a
	// difference between the two replays. Its replay alone would not do,
	// because it accepts any value of a register that has no events.
	bank := register.RTMRBank{}
	for i := range rtmrs {
		bank.RTMRs = append(bank.RTMRs, register.RTMR{Index: i, Digest: rtmrs[i][:]})
	}
	verified, err := parsed.Verify(bank.MRs())
	if err != nil {
		return nil, attest.Errorf(attest.ErrBinding, "cc_eventlog", "go-eventlog's replay of the event log does not match the RTMRs: %v", err).
			WithFix("send the event log of the boot that produced this quote, unmodified")
	}
	return &ReplayedEventLog{Events: verified}, nil
}

// replayEvents extends each RTMR, from zero, with the SHA-384 digests of
// its events and compares the result with rtmrs.
func replayEvents(events []tcg.Event, rtmrs [4][48]byte) error {
	var replayed [4][48]byte
	var counts [4]int
	for i, e := range events {
		if e.Type == eventTypeNoAction {
			continue
		}
		rtmr, err := eventRTMR(i, e)
		if err != nil {
			return err
		}
		h := sha512.New384()
		h.Write(replayed[rtmr][:])
		h.Write(e.Digest)
		h.Sum(replayed[rtmr][:0])
		counts[rtmr]++
	}

	for i := range rtmrs {
		if replayed[i] != rtmrs[i] {
			return attest.Errorf(attest.ErrBinding, "cc_eventlog", "replaying the event log's %d RTMR%d events does not give the quote's RTMR%d", counts[i], i, i).
				WithValues(hex.EncodeToString(replayed[i][:]), hex.EncodeToString(rtmrs[i][:])).
				WithFix("send the event log of the boot that produced this quote, unmodified; a changed event digest or a missing, extra or reordered event gives a different value")
		}
	}
	return nil
}

// eventRTMR returns the RTMR number (0 to 3) that the measured event e,
// the i-th of the log, extends.
func eventRTMR(i int, e tcg.Event) (int, error) {
	if e.Index < ccMRIndexRTMR0 || e.Index > ccMRIndexRTMR3 {
		target := "no TDX measurement register"
		if e.Index == ccMRIndexMRTD {
			target = "MRTD, which no event can extend"
		}
		return 0, malformedEventLog(fmt.Sprintf("event %d (%s) names CC MR index %d, which is %s; TDX events use 1 to 4 for RTMR0 to RTMR3", i+1, e.Type.TCGString(), e.Index, target), nil)
	}
	if len(e.Digest) != sha512.Size384 {
		return 0, malformedEventLog(fmt.Sprintf("event %d (%s) for RTMR%d has no SHA-384 digest", i+1, e.Type.TCGString(), e.Index-ccMRIndexRTMR0), nil)
	}
	return e.Index - ccMRIndexRTMR0, nil
}

func malformedEventLog(reason string, err error) *attest.Error {
	return attest.Malformed("cc_eventlog", reason, err).
		WithFix("send the CC event log as the TDX guest reads it from /sys/firmware/acpi/tables/data/CCEL: base64-encoded in cc_eventlog of Trustee's evidence, or as the raw file with cloister verify --event-log")
}

// eventLogEnd returns the length of the events in raw, up to the first 8
// bytes of 0xFF or 0x00 that start where an event would. The CCEL area is
// padded that way, and Trustee's eventlog crate and the guest-components
// attester stop there too. go-eventlog would parse zero padding as empty events, so the
// padding is cut off before it parses the log. The walk checks each length
// against the buffer and the digest sizes that the Spec ID event declares,
// and counts the events, so that go-eventlog never holds more than
// MaxEventLogEvents of them.
func eventLogEnd(raw []byte) (int, error) {
	sizes, pos, err := parseSpecIDHeader(raw)
	if err != nil {
		return 0, err
	}
	for n := 1; pos < len(raw); n++ {
		rest := raw[pos:]
		if isPadding(rest[:min(8, len(rest))]) {
			return pos, nil
		}
		if n > MaxEventLogEvents {
			return 0, attest.Errorf(attest.ErrUnsupported, "cc_eventlog", "the event log has more than %d events", MaxEventLogEvents).
				WithFix("send the firmware's CC event log; Cloister bounds the events it replays so that a log cannot make the claims or the memory it takes arbitrarily large")
		}
		size, err := eventSize(rest, sizes)
		if err != nil {
			return 0, malformedEventLog(fmt.Sprintf("event %d at byte offset %d is truncated or invalid", n, pos), err)
		}
		pos += size
	}
	return pos, nil
}

// parseSpecIDHeader checks that raw starts with an EV_NO_ACTION event whose
// data is a TCG_EfiSpecIDEvent, and returns the digest size of each
// algorithm it declares and the offset of the next event.
func parseSpecIDHeader(raw []byte) (map[uint16]int, int, error) {
	if bytes.HasPrefix(raw, []byte("CCEL")) {
		return nil, 0, malformedEventLog("this is the CCEL ACPI table (/sys/firmware/acpi/tables/CCEL), which only points to the event log", nil)
	}
	if len(raw) < sha1EventHeaderSize {
		return nil, 0, malformedEventLog(fmt.Sprintf("the event log has %d bytes, fewer than the %d-byte header of its first event", len(raw), sha1EventHeaderSize), nil)
	}
	typ := binary.LittleEndian.Uint32(raw[4:8])
	size := binary.LittleEndian.Uint32(raw[28:32])
	if uint64(size) > uint64(len(raw)-sha1EventHeaderSize) {
		return nil, 0, malformedEventLog(fmt.Sprintf("the first event declares %d bytes of data, but only %d follow; a CC event log starts with the EV_NO_ACTION \"Spec ID Event03\" event", size, len(raw)-sha1EventHeaderSize), nil)
	}
	data := raw[sha1EventHeaderSize : sha1EventHeaderSize+int(size)]
	if typ != eventTypeNoAction || !bytes.HasPrefix(data, specIDSignature) || len(data) < specIDAlgorithmsOffset+4 {
		return nil, 0, malformedEventLog("the first event is not the EV_NO_ACTION event with the \"Spec ID Event03\" signature that starts a TCG crypto-agile event log", nil)
	}

	count := binary.LittleEndian.Uint32(data[specIDAlgorithmsOffset:])
	table := data[specIDAlgorithmsOffset+4:]
	if count == 0 || count > maxSpecIDAlgorithms || uint64(len(table)) < 4*uint64(count) {
		return nil, 0, malformedEventLog(fmt.Sprintf("the Spec ID event declares %d digest algorithms in %d bytes", count, len(table)), nil)
	}
	sizes := make(map[uint16]int, count)
	for i := range int(count) {
		sizes[binary.LittleEndian.Uint16(table[4*i:])] = int(binary.LittleEndian.Uint16(table[4*i+2:]))
	}
	if sizes[algSHA384] != sha512.Size384 {
		return nil, 0, malformedEventLog("the Spec ID event declares no SHA-384 digests of 48 bytes, which RTMRs need", nil)
	}
	return sizes, sha1EventHeaderSize + int(size), nil
}

// eventSize returns the size of the crypto-agile event (TCG_PCR_EVENT2) at
// the start of b: PCRIndex, EventType, a digest count, each digest with its
// algorithm, EventSize and the event data.
func eventSize(b []byte, sizes map[uint16]int) (int, error) {
	const headerSize = 4 + 4 + 4
	if len(b) < headerSize {
		return 0, io.ErrUnexpectedEOF
	}
	count := binary.LittleEndian.Uint32(b[8:12])
	if uint64(count) > uint64(len(sizes)) {
		return 0, fmt.Errorf("%d digests, but the Spec ID event declares %d algorithms", count, len(sizes))
	}
	pos := headerSize
	for range count {
		if len(b)-pos < 2 {
			return 0, io.ErrUnexpectedEOF
		}
		alg := binary.LittleEndian.Uint16(b[pos:])
		size, ok := sizes[alg]
		if !ok {
			return 0, fmt.Errorf("digest algorithm 0x%04x is not declared in the Spec ID event", alg)
		}
		pos += 2
		if len(b)-pos < size {
			return 0, io.ErrUnexpectedEOF
		}
		pos += size
	}
	if len(b)-pos < 4 {
		return 0, io.ErrUnexpectedEOF
	}
	dataSize := binary.LittleEndian.Uint32(b[pos:])
	pos += 4
	if uint64(dataSize) > uint64(len(b)-pos) {
		return 0, fmt.Errorf("the event declares %d bytes of data, but only %d follow", dataSize, len(b)-pos)
	}
	return pos + int(dataSize), nil
}

// isPadding reports whether b is all 0xFF or all 0x00.
func isPadding(b []byte) bool {
	return len(bytes.Trim(b, "\xff")) == 0 || len(bytes.Trim(b, "\x00")) == 0
}
