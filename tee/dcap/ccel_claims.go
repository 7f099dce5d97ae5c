package dcap

import (
	"bytes"
	"crypto/sha512"
	"fmt"
	"unicode/utf8"

	"github.com/google/go-eventlog/tcg"

	"github.com/cloister-dev/cloister/attest"
)

// Claim names in Claims.Attributes that the event log adds.
const (
	// AttrEventLog is the attribute with the measured events, as []EventLogEvent.
	AttrEventLog = "event_log"
)

// maxEventDataClaim is the largest event data copied into an
// EventLogEvent, so that the claims stay small for logs of hundreds of
// events.
const maxEventDataClaim = 128

// maxEventTextClaim is the longest GRUB text copied into an EventLogEvent,
// above the length of a Linux kernel command line on common architectures.
const maxEventTextClaim = 4096

// EventLogEvent is one measured event of a replayed CC event log, as the
// claims list it.
type EventLogEvent struct {
	// Register is the RTMR the event extended: rtmr0 to rtmr3.
	Register string `json:"register"`
	// Type is the TCG event type name, such as EV_EFI_ACTION. The type is
	// not measured, so a policy must not trust it without the digest.
	Type string `json:"type"`
	// Digest is the SHA-384 digest the event extended into the register.
	Digest attest.Hex `json:"digest"`
	// Data is the event data, present only when Digest is its SHA-384
	// digest, so that the quote proves it, and it has at most 128 bytes.
	Data []byte `json:"data,omitempty"`
	// Text is the part of a GRUB event's data after its prefix (such as
	// "kernel_cmdline: " or "grub_cmd: "), present only when Digest is its
	// SHA-384 digest. GRUB measures the text but not the prefix, so the
	// quote proves that this text was measured into Register, not what it
	// was: a kernel command line and a grub.cfg line look alike. A command
	// line that carries a secret puts it into the claims and the
	// attestation result.
	Text string `json:"text,omitempty"`
}

// verifyEventLog replays the CC event log raw against the RTMRs of q, which
// verified, and records the result as the event-log check. For a TDX quote
// without a log, the check is recorded as not run. An SGX quote with a log
// is rejected, because only TDX guests have a CC event log.
func verifyEventLog(c *attest.Claims, q *Quote, raw []byte) error {
	if q.TD == nil {
		if len(raw) == 0 {
			return nil
		}
		c.Fail(checkEventLog, "an SGX quote has no RTMRs to replay an event log against")
		return attest.Errorf(attest.ErrUnsupported, "cc_eventlog", "an SGX quote came with a CC event log, but only TDX guests have one (CCEL)").
			WithFix("send the SGX quote without an event log (cc_eventlog in Trustee's evidence, --event-log of cloister verify), or send the log with the TDX quote of its guest")
	}
	if len(raw) == 0 {
		c.Skip(checkEventLog, false, "no CC event log came with the quote, so no event explains RTMR0 to RTMR3; send the guest's cc_eventlog, or pass it to cloister verify with --event-log")
		return nil
	}
	log, err := ReplayEventLog(raw, q.TD.RTMR)
	if err != nil {
		c.Fail(checkEventLog, err.Error())
		return err
	}
	c.Pass(checkEventLog)
	addEventLogClaims(c, log)
	return nil
}

// addEventLogClaims lists the measured events of log in the claims.
//
// NOTE: no claim names the kernel command line. GRUB measures a command
// line and every grub.cfg command into RTMR2 in the same way, with an
// unmeasured prefix saying which is which, so a label taken from the log
// would be the guest's word. A policy pins RTMR2, or the whole list of its
// digests, and may look for an expected text among them.
func addEventLogClaims(c *attest.Claims, log *ReplayedEventLog) {
	events := make([]EventLogEvent, 0, len(log.Events))
	for _, e := range log.Events {
		events = append(events, eventClaim(e))
	}
	c.SetAttribute(AttrEventLog, events)
}

func eventClaim(e tcg.Event) EventLogEvent {
	out := EventLogEvent{
		Register: fmt.Sprintf("rtmr%d", e.Index-ccMRIndexRTMR0),
		Type:     e.Type.TCGString(),
		Digest:   attest.Hex(bytes.Clone(e.Digest)),
	}
	if len(e.Data) <= maxEventDataClaim && digestOf(e.Digest, e.Data) {
		out.Data = bytes.Clone(e.Data)
	}
	if text, ok := grubText(e); ok {
		out.Text = text
	}
	return out
}

// grubPrefixes start the EV_IPL event data of the strings that GRUB
// measures into PCR 8, which a TDX guest maps to RTMR2. The first two start
// the kernel command line of upstream GRUB and of older Fedora-patched
// GRUB, as go-eventlog's extract package lists them. The others start each
// grub.cfg command and a module's command line.
var grubPrefixes = [][]byte{[]byte("kernel_cmdline: "), []byte("grub_kernel_cmdline "), []byte("grub_cmd: "), []byte("module_cmdline: ")}

// grubText returns the text of e after its GRUB prefix when e is a GRUB
// measurement in RTMR2 and its digest proves the text. The text ends at the
// first NUL after the prefix. The digest covers the text, with or without
// its NUL terminator, as go-eventlog accepts it. The GRUB of the Alibaba
// Cloud Linux 3 log in Trustee's test data hashes the text before the NUL
// and logs stray bytes after it. The text is capped at maxEventTextClaim
// bytes, and longer texts are left out.
func grubText(e tcg.Event) (string, bool) {
	if e.Index != ccMRIndexRTMR0+2 || e.Type != tcg.Ipl {
		return "", false
	}
	for _, prefix := range grubPrefixes {
		rest, ok := bytes.CutPrefix(e.Data, prefix)
		if !ok {
			continue
		}
		text, _, terminated := bytes.Cut(rest, []byte{0})
		proven := digestOf(e.Digest, text) || terminated && digestOf(e.Digest, rest[:len(text)+1])
		if !proven || !utf8.Valid(text) || len(text) > maxEventTextClaim {
			return "", false
		}
		return string(text), true
	}
	return "", false
}

func digestOf(digest, data []byte) bool {
	sum := sha512.Sum384(data)
	return bytes.Equal(sum[:], digest)
}
