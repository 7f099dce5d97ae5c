package tpm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/google/go-tpm-tools/client"
	"google.golang.org/protobuf/proto"

	"github.com/cloister-dev/cloister/attest"
)

// DevicePath is the Linux TPM resource manager device. The resource
// manager, unlike /dev/tpm0, lets several processes share the TPM and
// flushes the transient AK this attester creates.
const DevicePath = "/dev/tpmrm0"

// EventLogPath is the securityfs file in which Linux exposes the firmware's
// TCG event log of the first TPM.
const EventLogPath = "/sys/kernel/security/tpm0/binary_bios_measurements"

// maxNonceSize is the largest extraData any TPM accepts. TPM2B_DATA is
// sizeof(TPMT_HA) bytes: a 2-byte algorithm ID and a digest of the largest
// hash the TPM implements, so 66 with SHA-512. A TPM without SHA-512
// rejects a shorter nonce with TPM_RC_SIZE, and Attest returns that error.
const maxNonceSize = 66

func init() { attest.RegisterAttester(string(attest.TEETPM), Open) }

// Attester quotes every allocated PCR bank of a TPM with an AK and returns
// a go-tpm-tools Attestation protobuf with the event log, the form this
// package verifies.
type Attester struct {
	open func() (io.ReadWriteCloser, error)
	// eventLogPath is the event log file, EventLogPath unless a test
	// changes it.
	eventLogPath string
}

// Open returns the attester of the TPM at DevicePath, or an error wrapping
// attest.ErrNoDevice when the machine has none.
func Open() (attest.Attester, error) {
	if _, err := os.Stat(DevicePath); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tpm: %s: %w", DevicePath, attest.ErrNoDevice)
	} else if err != nil {
		return nil, fmt.Errorf("tpm: %s: %w", DevicePath, err)
	}
	return NewAttester(func() (io.ReadWriteCloser, error) {
		return os.OpenFile(DevicePath, os.O_RDWR, 0)
	}), nil
}

// NewAttester returns an attester that opens the TPM with open for each
// attestation, such as a simulator in tests.
func NewAttester(open func() (io.ReadWriteCloser, error)) *Attester {
	return &Attester{open: open, eventLogPath: EventLogPath}
}

// Name returns "tpm".
func (*Attester) Name() string { return string(attest.TEETPM) }

// Attest quotes the TPM's PCRs with reportData as the nonce (extraData),
// unpadded because extraData has a variable size.
// On Google Compute Engine it uses the AK that Google certified, with its
// certificate. Elsewhere it creates an RSA AK from the standard template,
// whose public key the verifier must pin.
func (a *Attester) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	if len(reportData) == 0 || len(reportData) > maxNonceSize {
		return nil, fmt.Errorf("tpm: report data of %d bytes cannot be a quote nonce: it must have 1 to %d bytes", len(reportData), maxNonceSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rw, err := a.open()
	if err != nil {
		return nil, fmt.Errorf("tpm: opening the TPM: %w", err)
	}
	defer rw.Close()

	key, err := client.GceAttestationKeyRSA(rw)
	if err != nil || key.Cert() == nil {
		if key != nil {
			key.Close()
		}
		if key, err = client.AttestationKeyRSA(rw); err != nil {
			return nil, fmt.Errorf("tpm: creating the attestation key: %w", err)
		}
	}
	defer key.Close()

	log, err := a.eventLog(rw)
	if err != nil {
		return nil, err
	}
	att, err := key.Attest(client.AttestOpts{Nonce: reportData, TCGEventLog: log, SkipTeeAttestation: true})
	if err != nil {
		return nil, fmt.Errorf("tpm: quoting the PCRs: %w", err)
	}
	data, err := proto.Marshal(att)
	if err != nil {
		return nil, fmt.Errorf("tpm: encoding the attestation: %w", err)
	}
	return &attest.Evidence{Format: string(attest.TEETPM), Data: data}, nil
}

// eventLog returns the TCG event log: the one that rw provides, such as a
// simulator's, or else the file at a.eventLogPath. A machine without a
// measured boot has no such file, so eventLog returns an empty log, and
// the verifier records the replay as not checked. A file that exists but
// cannot be read is an error, because quoting without it would make a
// fixable permission problem look like a machine without a log.
func (a *Attester) eventLog(rw io.ReadWriter) ([]byte, error) {
	if getter, ok := rw.(client.EventLogGetter); ok {
		log, err := getter.EventLog()
		if err != nil {
			return nil, fmt.Errorf("tpm: reading the event log: %w", err)
		}
		return log, nil
	}
	log, err := os.ReadFile(a.eventLogPath)
	if errors.Is(err, fs.ErrNotExist) {
		return []byte{}, nil
	}
	if err != nil {
		return nil, eventLogError(a.eventLogPath, err)
	}
	return log, nil
}

// eventLogError describes the failure to read the event log file at path,
// with the fix.
func eventLogError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("tpm: reading the event log %s: %w; run as root or grant this user read access to it (by default only root can read it)", path, err)
	}
	return fmt.Errorf("tpm: reading the event log %s: %w; check that securityfs is mounted on /sys/kernel/security and that the file is readable, such as by running as root", path, err)
}
