package dcap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/cloister-dev/cloister/attest"
)

// CCELPath is the file through which Linux exposes the data of the CCEL
// ACPI table: the guest's CC event log, padded to the size of the area
// that the firmware reserved for it. The file is usually mode 0400 and
// owned by root.
const CCELPath = "/sys/firmware/acpi/tables/data/CCEL"

// EventLog returns the guest's CC event log read from CCELPath, cut at
// the end of its events, as the DCAP verifier takes it in Evidence.Aux.
// It returns an error, and no log, when the file is missing or unreadable,
// or when it holds no valid event log within MaxEventLogSize bytes. The
// quote does not depend on the log, so callers send the evidence without
// it and report the error.
func (a *TDXAttester) EventLog(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := a.eventLogPath
	if path == "" {
		path = CCELPath
	}
	return readEventLog(path)
}

// readEventLog reads at most MaxEventLogSize bytes of the CC event log at
// path and returns the log without the padding after its last event. It
// reads one byte past the limit only to learn that the file goes on, so a
// large CCEL area costs no more memory than the limit.
func readEventLog(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, openEventLogError(path, err)
	}
	defer f.Close()

	raw, err := io.ReadAll(io.LimitReader(f, MaxEventLogSize+1))
	if err != nil {
		return nil, fmt.Errorf("tdx: reading the CC event log %s: %w", path, err)
	}
	truncated := len(raw) > MaxEventLogSize
	if truncated {
		raw = raw[:MaxEventLogSize]
	}

	// eventLogEnd stops at the padding that fills the rest of the CCEL
	// area. When the file is larger than the limit, that padding must
	// start within the bytes read.
	end, err := eventLogEnd(raw)
	if truncated && (err != nil || end == len(raw)) {
		return nil, fmt.Errorf("tdx: the CC event log %s does not end within the first %d bytes (%d MiB), the largest log a verifier accepts", path, MaxEventLogSize, MaxEventLogSize>>20)
	}
	if err != nil {
		// The verifier's fix names what a sender must send, which does not
		// apply to the guest that reads the file.
		var ae *attest.Error
		if errors.As(err, &ae) {
			ae.Fix = "check that the file is the CCEL data of a TDX guest whose firmware writes a TCG crypto-agile event log with SHA-384 digests"
		}
		return nil, fmt.Errorf("tdx: the CC event log %s is invalid: %w", path, err)
	}
	return bytes.Clone(raw[:end]), nil
}

// openEventLogError explains why the CC event log at path could not be
// opened and what to do about it.
func openEventLogError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("tdx: no CC event log: %w; the firmware wrote no CCEL ACPI table or the kernel does not expose its data: boot with firmware that writes one, such as TDVF, and a kernel that lists CCEL under /sys/firmware/acpi/tables/data", err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("tdx: reading the CC event log: %w; run as root, or give this user read access to %s, which is usually mode 0400 and owned by root", err, path)
	}
	return fmt.Errorf("tdx: reading the CC event log: %w", err)
}
