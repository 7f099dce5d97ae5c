package tpm

import (
	"crypto"
	"errors"
	"fmt"
	"sort"

	"github.com/google/go-eventlog/extract"
	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"

	"github.com/cloister-dev/cloister/attest"
)

// EventLogSummary describes an event log that replayed to a PCR bank.
type EventLogSummary struct {
	Bank string `json:"bank"`
	// Events is the number of events that extended the quoted PCRs.
	Events int `json:"events"`
	// PCRs lists the PCR indexes that at least one event extended.
	PCRs []int `json:"pcrs"`
	// SecureBoot is the UEFI SecureBoot variable as measured, when the log
	// contains it. SecureBootError is the reason the state was not read, such as
	// an event whose data does not match its replayed digest.
	SecureBoot      *bool  `json:"secure_boot,omitempty"`
	SecureBootError string `json:"secure_boot_error,omitempty"`
	// Firmware is the S-CRTM version or GCE firmware version, and
	// Technology the GCE confidential technology, from PCR 0's events.
	Firmware   string `json:"firmware,omitempty"`
	Technology string `json:"technology,omitempty"`
}

// errBankNotInLog reports an event log without digests of a quoted bank.
var errBankNotInLog = errors.New("the event log has no digests of this PCR bank")

// ReplayEventLog parses a TCG PC Client event log and replays every event
// against the PCR values of bank, which must already be attested by a
// quote. Replay starts PCR 0 at the locality of the StartupLocality event
// when there is one, and at the H-CRTM value after an EV_EFI_HCRTM_EVENT. A
// PCR that no event extends is not compared. The summary includes the
// platform facts read from the replayed events.
func ReplayEventLog(log []byte, bank PCRBank) (*EventLogSummary, error) {
	return replayEventLog(log, bank, true)
}

// replayEventLog replays log against bank and summarizes the events, with
// the platform facts only when platform is true: reading them parses every
// Secure Boot certificate, which costs as much as the replay.
func replayEventLog(log []byte, bank PCRBank, platform bool) (*EventLogSummary, error) {
	parsed, err := tcg.ParseEventLog(log, tcg.ParseOpts{AllowPadding: true})
	if err != nil {
		return nil, attest.Malformed("event_log", "is not a TCG PC Client event log", err)
	}
	if !logHasBank(parsed, bank.Hash) {
		return nil, errBankNotInLog
	}
	mrs := make([]register.MR, 0, len(bank.Values))
	for _, i := range bank.Indexes() {
		mrs = append(mrs, register.PCR{Index: i, Digest: bank.Values[i], DigestAlg: bank.Hash})
	}
	events, err := parsed.Verify(mrs)
	if err != nil {
		var replay tcg.ReplayError
		if errors.As(err, &replay) {
			return nil, attest.Errorf(attest.ErrBinding, "event_log", "the event log does not replay to the quoted %s PCR values of PCR %s, so the log does not describe this boot", hashName(bank.Hash), joinInts(replay.InvalidMRs)).
				WithFix("send the event log of the boot that the quote measured, unmodified")
		}
		return nil, attest.Errorf(attest.ErrBinding, "event_log", "the event log does not replay to the quoted %s PCR values: %v", hashName(bank.Hash), err)
	}
	return summarize(events, bank.Hash, platform), nil
}

func logHasBank(log *tcg.EventLog, h crypto.Hash) bool {
	for _, alg := range log.Algs {
		if alg.CryptoHash() == h {
			return true
		}
	}
	return false
}

// summarize reads the platform facts from replayed events. go-eventlog's
// extractors panic on event types they do not know, so they run only when
// every event type is known. The type is not covered by the digest.
func summarize(events []tcg.Event, hash crypto.Hash, platform bool) *EventLogSummary {
	s := &EventLogSummary{Bank: hashName(hash), Events: len(events)}
	seen := map[int]bool{}
	known := true
	for _, e := range events {
		if !seen[e.Index] {
			seen[e.Index] = true
			s.PCRs = append(s.PCRs, e.Index)
		}
		if _, ok := e.Type.KnownName(); !ok {
			known = false
		}
	}
	sort.Ints(s.PCRs)
	if !known || !platform {
		return s
	}
	if p, err := extract.PlatformState(hash, events); err == nil {
		if v := p.GetGceVersion(); v != 0 {
			s.Firmware = fmt.Sprintf("GCE firmware %d", v)
		} else if id := p.GetScrtmVersionId(); len(id) > 0 {
			s.Firmware = attest.Hex(id).String()
		}
		if p.GetTechnology() != 0 {
			s.Technology = p.GetTechnology().String()
		}
	}
	// NOTE: an error can mean an altered log (event data that does not
	// match its replayed digest) or a log this reader does not understand,
	// and go-eventlog does not tell them apart. It is recorded, not judged.
	sb, err := extract.SecureBootState(events, extract.TPMRegisterConfig, extract.Opts{AllowEmptySBVar: true})
	if err != nil {
		s.SecureBootError = err.Error()
	} else {
		enabled := sb.GetEnabled()
		s.SecureBoot = &enabled
	}
	return s
}
