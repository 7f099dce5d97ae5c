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
	return &Attester{open: open}
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

	// A machine without a measured boot has no event log. The quote is
	// still valid and the verifier records the replay as not checked.
	log, err := client.GetEventLog(rw)
	if err != nil {
		log = []byte{}
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
