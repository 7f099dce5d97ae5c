package nitro

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hf/nsm"
	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/devcall"
)

// devicePath is the Nitro Secure Module device inside an enclave.
const devicePath = "/dev/nsm"

func init() { attest.RegisterAttester(string(attest.TEENitro), OpenAttester) }

// Attester requests attestation documents from the Nitro Secure Module.
type Attester struct {
	// send sends one request to the NSM and returns its response. Nil
	// opens a session on /dev/nsm for the request.
	send func(request.Request) (response.Response, error)
	// serial runs one request at a time.
	serial devcall.Serial
}

// OpenAttester returns the Nitro attester, or an error wrapping
// attest.ErrNoDevice when /dev/nsm is absent (outside a Nitro enclave).
func OpenAttester() (attest.Attester, error) {
	if _, err := os.Stat(devicePath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("nitro: %s not found, so this is not a Nitro enclave: %w", devicePath, attest.ErrNoDevice)
		}
		return nil, fmt.Errorf("nitro: %s: %w", devicePath, err)
	}
	return &Attester{}, nil
}

// Name returns "nitro".
func (*Attester) Name() string { return string(attest.TEENitro) }

// Attest requests a document whose user_data field is reportData, the
// field that the verifier reports as the claims' report data, and checks
// that the document returned parses and carries it. A session is
// opened per call, because the device is rarely used and a held file
// descriptor would outlive idle agents. When ctx ends first, Attest
// returns at once and the request runs to its end in the background.
func (a *Attester) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	if len(reportData) > maxUserDataSize {
		return nil, fmt.Errorf("nitro: report data of %d bytes is longer than the %d-byte user_data field; pass a digest of the data instead", len(reportData), maxUserDataSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	send := a.send
	if send == nil {
		send = sendToDevice
	}
	res, err := devcall.Do(ctx, &a.serial, "nitro", func() (response.Response, error) {
		res, err := send(&request.Attestation{UserData: reportData})
		if err != nil {
			return res, fmt.Errorf("nitro: attestation request to %s: %w", devicePath, err)
		}
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	if res.Error != "" {
		return nil, fmt.Errorf("nitro: the Nitro Secure Module rejected the attestation request: %s", res.Error)
	}
	if res.Attestation == nil || len(res.Attestation.Document) == 0 {
		return nil, fmt.Errorf("nitro: the Nitro Secure Module returned no attestation document")
	}
	doc, err := ParseDocument(res.Attestation.Document)
	if err != nil {
		return nil, fmt.Errorf("nitro: the Nitro Secure Module returned an invalid attestation document: %w", err)
	}
	if !bytes.Equal(doc.UserData, reportData) {
		return nil, fmt.Errorf("nitro: the Nitro Secure Module returned a document whose user_data %x is not the requested %x", doc.UserData, reportData)
	}
	return &attest.Evidence{Format: string(attest.TEENitro), Data: res.Attestation.Document}, nil
}

// sendToDevice sends req in a session on /dev/nsm and closes the session.
func sendToDevice(req request.Request) (response.Response, error) {
	sess, err := nsm.OpenDefaultSession()
	if err != nil {
		return response.Response{}, fmt.Errorf("opening %s: %w", devicePath, err)
	}
	defer sess.Close()
	return sess.Send(req)
}
