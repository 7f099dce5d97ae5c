package dcap

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-tdx-guest/client"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/devcall"
	"github.com/cloister-dev/cloister/tee/tsm"
)

func init() { attest.RegisterAttester(string(attest.TEETDX), OpenTDXAttester) }

// tdxTSMProvider is the provider name the Linux tdx_guest driver gives its
// configfs-tsm reports.
const tdxTSMProvider = "tdx_guest"

// TDXAttester requests quotes from the TDX module of the trust domain it
// runs in: through configfs-tsm (/sys/kernel/config/tsm/report, Linux 6.7
// and later) when its provider is tdx_guest, else through go-tdx-guest's
// client for the TDX_CMD_GET_QUOTE ioctl of /dev/tdx_guest, which only
// some vendor kernels have. Either way the host's quoting enclave signs the
// quote.
//
// Attest returns the quote alone. EventLog reads the guest's CC event log
// from CCELPath, for callers that send it beside the quote (the KBS
// client does), so that RA-TLS certificates do not carry it.
type TDXAttester struct {
	// tsm is the configfs-tsm client whose provider is tdx_guest, or nil
	// for the device.
	tsm configfsi.Client
	// eventLogPath is the file that EventLog reads. Empty means CCELPath.
	eventLogPath string
	// serial runs one request at a time, because the TDX guest driver
	// handles one quote request at a time.
	serial devcall.Serial
}

// OpenTDXAttester returns the TDX attester of this trust domain, or an
// error wrapping attest.ErrNoDevice when neither configfs-tsm with the
// tdx_guest provider nor /dev/tdx_guest exists.
func OpenTDXAttester() (attest.Attester, error) {
	if c, err := linuxtsm.MakeClient(); err == nil {
		if a, err := newTDXTSMAttester(c); err == nil {
			return a, nil
		}
	}
	if _, err := os.Stat("/dev/tdx_guest"); err == nil {
		return &TDXAttester{}, nil
	}
	return nil, fmt.Errorf("tdx: neither configfs-tsm with the %s provider nor /dev/tdx_guest is present: %w", tdxTSMProvider, attest.ErrNoDevice)
}

// newTDXTSMAttester returns an attester on a configfs-tsm client whose
// report provider is tdx_guest. It removes the entry it reads the
// provider from. go-tdx-guest's configfs quote provider is not used,
// because at the version in go.mod it leaves one report entry behind on
// every quote request.
func newTDXTSMAttester(c configfsi.Client) (*TDXAttester, error) {
	r, err := report.Create(c, &report.Request{})
	if err != nil {
		return nil, fmt.Errorf("tdx: configfs-tsm: %w", err)
	}
	provider, err := r.ReadOption("provider")
	if destroyErr := r.Destroy(); err == nil && destroyErr != nil {
		err = fmt.Errorf("removing the report entry: %w", destroyErr)
	}
	if err != nil {
		return nil, fmt.Errorf("tdx: configfs-tsm: reading the provider: %w", err)
	}
	if p := strings.TrimSpace(string(provider)); p != tdxTSMProvider {
		return nil, fmt.Errorf("tdx: configfs-tsm provider is %q, not %s: %w", p, tdxTSMProvider, attest.ErrNoDevice)
	}
	return &TDXAttester{tsm: c}, nil
}

// Name returns "tdx".
func (*TDXAttester) Name() string { return string(attest.TEETDX) }

// Attest returns a TDX quote whose REPORTDATA is reportData, zero-padded
// to 64 bytes. When ctx ends first, Attest returns at once and the request
// runs to its end in the background.
func (a *TDXAttester) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	if len(reportData) > 64 {
		return nil, fmt.Errorf("tdx: report data is %d bytes, at most 64 fit in REPORTDATA", len(reportData))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rd [64]byte
	copy(rd[:], reportData)
	return devcall.Do(ctx, &a.serial, "tdx", func() (*attest.Evidence, error) {
		return a.quote(rd)
	})
}

// quote requests a quote for rd and checks it.
func (a *TDXAttester) quote(rd [64]byte) (*attest.Evidence, error) {
	source := "/dev/tdx_guest"
	var quote []byte
	var err error
	if a.tsm != nil {
		source = "configfs-tsm outblob"
		quote, err = a.tsmQuote(rd)
	} else {
		quote, err = deviceQuote(rd)
	}
	if err != nil {
		return nil, fmt.Errorf("tdx: requesting a quote: %w", err)
	}
	if err := checkQuote(source, quote, attest.TEETDX, rd); err != nil {
		return nil, fmt.Errorf("tdx: %w", err)
	}
	return &attest.Evidence{Format: "dcap", Data: quote}, nil
}

// tsmQuote returns the outblob of a configfs-tsm report for rd. tsm.Get
// removes the entry, and requests the report again, a bounded number of
// times, when the entry's generation shows that another writer changed
// the inblob meanwhile.
func (a *TDXAttester) tsmQuote(rd [64]byte) ([]byte, error) {
	resp, err := tsm.Get(a.tsm, &report.Request{InBlob: rd[:]})
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm report: %w", err)
	}
	if p := strings.TrimSpace(resp.Provider); p != tdxTSMProvider {
		return nil, fmt.Errorf("configfs-tsm report came from provider %q, not %s", p, tdxTSMProvider)
	}
	return resp.OutBlob, nil
}

// deviceQuote requests a quote through the /dev/tdx_guest ioctls.
//
// NOTE: unlike the configfs-tsm path, a quote with other REPORTDATA is not
// requested again here, because another caller cannot change this call's
// report data. TDX_CMD_GET_REPORT0 carries the report data and returns the
// TDREPORT in the caller's own request structure. TDX_CMD_GET_QUOTE turns
// the TDREPORT in the caller's buffer into the quote in that same buffer.
// configfs-tsm instead shares one report entry between the writer of inblob
// and the reader of outblob. TDX_CMD_GET_QUOTE exists only in vendor
// kernels, whose drivers were not all read, so Attest still compares the
// quote's REPORTDATA in checkQuote and fails the request on a mismatch.
func deviceQuote(rd [64]byte) ([]byte, error) {
	d, err := client.OpenDevice()
	if err != nil {
		return nil, fmt.Errorf("opening /dev/tdx_guest: %w", err)
	}
	defer d.Close()
	return client.GetRawQuote(d, rd)
}

// checkQuote returns an error unless quote, as source returned it, is a
// DCAP quote of tee whose REPORTDATA is rd. A quote with other report data
// belongs to a request that raced this one on configfs-tsm or in Gramine's
// attestation files, or comes from a faulty driver on the ioctl path. A
// verifier would reject it as stale either way.
func checkQuote(source string, quote []byte, tee attest.TEE, rd [64]byte) error {
	q, err := ParseQuote(quote)
	if err != nil {
		return fmt.Errorf("%s returned %d bytes that are not a valid quote: %w", source, len(quote), err)
	}
	if q.TEE() != tee {
		return fmt.Errorf("%s returned a %s quote, not a %s quote", source, q.TEE(), tee)
	}
	var got [64]byte
	switch {
	case q.TD != nil:
		got = q.TD.ReportData
	case q.Enclave != nil:
		got = q.Enclave.ReportData
	}
	if got != rd {
		return fmt.Errorf("%s returned a quote whose REPORTDATA %x is not the requested %x (another request raced this one, or the guest driver is faulty): retry the request, and check the driver if the mismatch repeats", source, got[:], rd[:])
	}
	return nil
}
