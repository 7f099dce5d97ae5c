package dcap

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-tdx-guest/client"

	"github.com/cloister-dev/cloister/attest"
)

func init() { attest.RegisterAttester(string(attest.TEETDX), OpenTDXAttester) }

// tdxTSMProvider is the provider name the Linux tdx_guest driver gives its
// configfs-tsm reports.
const tdxTSMProvider = "tdx_guest"

// TDXAttester requests quotes from the TDX module of the trust domain it
// runs in, through go-tdx-guest's client: configfs-tsm
// (/sys/kernel/config/tsm/report) when its provider is tdx_guest, else the
// /dev/tdx_guest ioctl interface. Either way the host's quoting enclave
// signs the quote.
//
// Attest returns the quote alone. EventLog reads the guest's CC event log
// from CCELPath, for callers that send it beside the quote (the KBS
// client does), so that RA-TLS certificates do not carry it.
type TDXAttester struct {
	// provider is the configfs-tsm quote provider, or nil for the device.
	provider any
	// eventLogPath is the file that EventLog reads. Empty means CCELPath.
	eventLogPath string
	// mu serializes requests: the TDX guest driver handles one quote
	// request at a time.
	mu sync.Mutex
}

// OpenTDXAttester returns the TDX attester of this trust domain, or an
// error wrapping attest.ErrNoDevice when neither configfs-tsm with the
// tdx_guest provider nor /dev/tdx_guest exists.
func OpenTDXAttester() (attest.Attester, error) {
	if c, err := linuxtsm.MakeClient(); err == nil {
		if r, err := report.Create(c, &report.Request{}); err == nil {
			provider, err := r.ReadOption("provider")
			_ = r.Destroy()
			if err == nil && strings.TrimSpace(string(provider)) == tdxTSMProvider {
				qp, err := client.GetQuoteProvider()
				if err != nil {
					return nil, fmt.Errorf("tdx: configfs-tsm quote provider: %w", err)
				}
				return &TDXAttester{provider: qp}, nil
			}
		}
	}
	if _, err := os.Stat("/dev/tdx_guest"); err == nil {
		return &TDXAttester{}, nil
	}
	return nil, fmt.Errorf("tdx: neither configfs-tsm with the %s provider nor /dev/tdx_guest is present: %w", tdxTSMProvider, attest.ErrNoDevice)
}

// Name returns "tdx".
func (*TDXAttester) Name() string { return string(attest.TEETDX) }

// Attest returns a TDX quote whose REPORTDATA is reportData, zero-padded
// to 64 bytes.
func (a *TDXAttester) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	if len(reportData) > 64 {
		return nil, fmt.Errorf("tdx: report data is %d bytes, at most 64 fit in REPORTDATA", len(reportData))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rd [64]byte
	copy(rd[:], reportData)
	a.mu.Lock()
	defer a.mu.Unlock()
	var quote []byte
	var err error
	if a.provider != nil {
		quote, err = client.GetRawQuote(a.provider, rd)
	} else {
		quote, err = a.deviceQuote(rd)
	}
	if err != nil {
		return nil, fmt.Errorf("tdx: requesting a quote: %w", err)
	}
	return &attest.Evidence{Format: "dcap", Data: quote}, nil
}

func (a *TDXAttester) deviceQuote(rd [64]byte) ([]byte, error) {
	d, err := client.OpenDevice()
	if err != nil {
		return nil, fmt.Errorf("opening /dev/tdx_guest: %w", err)
	}
	defer d.Close()
	return client.GetRawQuote(d, rd)
}
