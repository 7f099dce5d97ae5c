package tpm

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// logBuilder writes a crypto-agile TCG event log with SHA-256 digests.
type logBuilder struct{ bytes.Buffer }

func newLogBuilder() *logBuilder {
	le := binary.LittleEndian
	var spec []byte
	spec = append(spec, "Spec ID Event03\x00"...)
	spec = le.AppendUint32(spec, 0) // platform class
	spec = append(spec, 0, 2, 0, 2) // version minor, major, errata, uintn size
	spec = le.AppendUint32(spec, 1) // one algorithm
	spec = le.AppendUint16(spec, 0x000b)
	spec = le.AppendUint16(spec, 32)
	spec = append(spec, 0) // no vendor info

	b := &logBuilder{}
	b.Write(le.AppendUint32(nil, 0))
	b.Write(le.AppendUint32(nil, 3)) // EV_NO_ACTION
	b.Write(make([]byte, 20))
	b.Write(le.AppendUint32(nil, uint32(len(spec))))
	b.Write(spec)
	return b
}

// event appends an event whose digest is the given SHA-256 value.
func (b *logBuilder) event(pcr, typ uint32, digest, data []byte) {
	le := binary.LittleEndian
	b.Write(le.AppendUint32(nil, pcr))
	b.Write(le.AppendUint32(nil, typ))
	b.Write(le.AppendUint32(nil, 1))
	b.Write(le.AppendUint16(nil, 0x000b))
	b.Write(digest)
	b.Write(le.AppendUint32(nil, uint32(len(data))))
	b.Write(data)
}

func extend(pcr, digest []byte) []byte {
	h := sha256.New()
	h.Write(pcr)
	h.Write(digest)
	return h.Sum(nil)
}

// TestReplayStartupLocality replays a PCR 0 that TPM2_Startup at locality
// 3 initialized to 00...03, as the StartupLocality event records.
func TestReplayStartupLocality(t *testing.T) {
	crtm := sha256.Sum256([]byte("S-CRTM version"))
	b := newLogBuilder()
	b.event(0, 3, make([]byte, 32), append([]byte("StartupLocality\x00"), 3))
	b.event(0, 0x08, crtm[:], []byte("S-CRTM version")) // EV_S_CRTM_VERSION
	log := b.Bytes()

	atLocality3 := make([]byte, 32)
	atLocality3[31] = 3
	pcr0 := extend(atLocality3, crtm[:])

	s, err := ReplayEventLog(log, PCRBank{Hash: crypto.SHA256, Values: map[int][]byte{0: pcr0}})
	if err != nil {
		t.Fatalf("ReplayEventLog: %v", err)
	}
	if s.Events != 1 || len(s.PCRs) != 1 || s.PCRs[0] != 0 {
		t.Errorf("summary = %+v, want one event on PCR 0", s)
	}

	// The same log against a PCR 0 that started at zero does not replay.
	fromZero := extend(make([]byte, 32), crtm[:])
	_, err = ReplayEventLog(log, PCRBank{Hash: crypto.SHA256, Values: map[int][]byte{0: fromZero}})
	if !errors.Is(err, attest.ErrBinding) || !strings.Contains(err.Error(), "PCR 0") {
		t.Fatalf("error = %v, want a binding error naming PCR 0", err)
	}
}

func TestReplayEventLogErrors(t *testing.T) {
	digest := sha256.Sum256([]byte("kernel"))
	b := newLogBuilder()
	b.event(4, 0x0d, digest[:], []byte("kernel"))
	log := b.Bytes()
	pcr4 := extend(make([]byte, 32), digest[:])

	if _, err := ReplayEventLog(log, PCRBank{Hash: crypto.SHA256, Values: map[int][]byte{4: pcr4}}); err != nil {
		t.Fatalf("ReplayEventLog: %v", err)
	}
	if _, err := ReplayEventLog(log[:len(log)-3], PCRBank{Hash: crypto.SHA256, Values: map[int][]byte{4: pcr4}}); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("truncated log: error = %v, want a malformed event log", err)
	}
	sha1Bank := PCRBank{Hash: crypto.SHA1, Values: map[int][]byte{4: make([]byte, 20)}}
	if _, err := ReplayEventLog(log, sha1Bank); !errors.Is(err, errBankNotInLog) {
		t.Errorf("SHA-1 bank: error = %v, want errBankNotInLog", err)
	}
}
