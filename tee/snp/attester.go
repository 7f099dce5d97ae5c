package snp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-sev-guest/client"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/devcall"
	"github.com/cloister-dev/cloister/tee/tsm"
)

func init() { attest.RegisterAttester(string(attest.TEESNP), OpenAttester) }

// tsmProvider is the provider name the Linux sev-guest driver gives its
// configfs-tsm reports.
const tsmProvider = "sev_guest"

// HardwareAttester requests reports from the SEV-SNP firmware of the guest
// it runs in: through configfs-tsm (/sys/kernel/config/tsm/report, Linux
// 6.7 and later) when its provider is sev_guest, else through the
// /dev/sev-guest ioctl interface. Evidence.Aux carries the certificate table
// that the host attached (an extended report), when there is one. Without
// it, such as when the configfs-tsm entry has no auxblob attribute, the
// verifier needs the VCEK or VLEK from its collateral.
type HardwareAttester struct {
	tsm configfsi.Client
	// openDevice opens /dev/sev-guest; nil when configfs-tsm is used.
	openDevice func() (client.Device, error)
	// serial runs one request at a time, because the firmware handles one
	// guest request at a time and the ioctl path shares a message
	// sequence.
	serial devcall.Serial
	// vmpl is the VMPL that reports are requested at; nil requests VMPL 0
	// through the ioctl and the kernel's default privlevel through
	// configfs-tsm.
	vmpl *uint32
}

// MaxVMPL is the highest VMPL of SEV-SNP: a guest has VMPLs 0 to 3.
const MaxVMPL = 3

// SetVMPL makes Attest request reports at vmpl, as a guest that runs above
// VMPL 0 under an SVSM needs, because the firmware rejects a request for a
// VMPL more privileged than the requester's. Call it before the first
// Attest, and not concurrently with Attest.
func (a *HardwareAttester) SetVMPL(vmpl uint32) error {
	if vmpl > MaxVMPL {
		return fmt.Errorf("snp: VMPL %d is out of range: use 0 to %d", vmpl, MaxVMPL)
	}
	a.vmpl = &vmpl
	return nil
}

// OpenAttester returns the hardware attester of this guest, or an error
// wrapping attest.ErrNoDevice when neither configfs-tsm with the sev_guest
// provider nor /dev/sev-guest exists.
func OpenAttester() (attest.Attester, error) {
	if c, err := linuxtsm.MakeClient(); err == nil {
		if a, err := newTSMAttester(c); err == nil {
			return a, nil
		}
	}
	if _, err := os.Stat("/dev/sev-guest"); err == nil {
		return newDeviceAttester(func() (client.Device, error) { return client.OpenDevice() })
	}
	return nil, fmt.Errorf("snp: neither configfs-tsm with the %s provider nor /dev/sev-guest is present: %w", tsmProvider, attest.ErrNoDevice)
}

// newTSMAttester returns an attester on a configfs-tsm client whose report
// provider is sev_guest.
func newTSMAttester(c configfsi.Client) (*HardwareAttester, error) {
	r, err := report.Create(c, &report.Request{})
	if err != nil {
		return nil, fmt.Errorf("snp: configfs-tsm: %w", err)
	}
	provider, err := r.ReadOption("provider")
	_ = r.Destroy()
	if err != nil {
		return nil, fmt.Errorf("snp: configfs-tsm: reading the provider: %w", err)
	}
	if p := strings.TrimSpace(string(provider)); p != tsmProvider {
		return nil, fmt.Errorf("snp: configfs-tsm provider is %q, not %s: %w", p, tsmProvider, attest.ErrNoDevice)
	}
	return &HardwareAttester{tsm: c}, nil
}

// newDeviceAttester returns an attester that uses the ioctl device opened
// by open, checking that it opens.
func newDeviceAttester(open func() (client.Device, error)) (*HardwareAttester, error) {
	d, err := open()
	if err != nil {
		return nil, fmt.Errorf("snp: opening /dev/sev-guest: %v: %w", err, attest.ErrNoDevice)
	}
	_ = d.Close()
	return &HardwareAttester{openDevice: open}, nil
}

// Name returns "snp".
func (a *HardwareAttester) Name() string { return string(attest.TEESNP) }

// Attest requests a report binding reportData, zero-padded to 64 bytes, and
// checks that the report returned carries it. It requests the VMPL set by
// SetVMPL. Without one, the ioctl path requests VMPL 0, and the
// configfs-tsm path leaves privlevel at the kernel's default. When ctx ends
// first, Attest returns at once and the request runs to its end in the
// background.
func (a *HardwareAttester) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	if len(reportData) > 64 {
		return nil, fmt.Errorf("snp: report data is %d bytes, at most 64 fit in REPORT_DATA", len(reportData))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rd [64]byte
	copy(rd[:], reportData)

	return devcall.Do(ctx, &a.serial, "snp", func() (*attest.Evidence, error) {
		if a.tsm != nil {
			return a.attestTSM(rd)
		}
		return a.attestDevice(rd)
	})
}

func (a *HardwareAttester) attestTSM(rd [64]byte) (*attest.Evidence, error) {
	req := &report.Request{InBlob: rd[:], GetAuxBlob: true}
	if a.vmpl != nil {
		req.Privilege = &report.Privilege{Level: uint(*a.vmpl)}
	}
	resp, err := tsm.Get(a.tsm, req)
	if err != nil {
		return nil, fmt.Errorf("snp: configfs-tsm report: %w", err)
	}
	if p := strings.TrimSpace(resp.Provider); p != tsmProvider {
		return nil, fmt.Errorf("snp: configfs-tsm report came from provider %q, not %s", p, tsmProvider)
	}
	if err := checkReport("configfs-tsm outblob", resp.OutBlob, rd); err != nil {
		return nil, err
	}
	return &attest.Evidence{Format: string(attest.TEESNP), Data: resp.OutBlob, Aux: nonEmpty(resp.AuxBlob)}, nil
}

// attestDevice requests a report through the /dev/sev-guest ioctl.
//
// NOTE: unlike the configfs-tsm path, a report with other REPORT_DATA is
// not requested again here, because another caller cannot change this
// call's report data. Each SNP_GET_REPORT and SNP_GET_EXT_REPORT ioctl
// carries its report data and receives its report in the caller's own
// request structures, and Linux's sev-guest driver serializes guest
// requests under one mutex (snp_cmd_mutex). configfs-tsm instead shares one
// report entry between the writer of inblob and the reader of outblob.
// checkReport still compares REPORT_DATA after the call, and a mismatch
// fails the request without a retry, because it is a driver or firmware
// fault that a retry would hide.
func (a *HardwareAttester) attestDevice(rd [64]byte) (*attest.Evidence, error) {
	d, err := a.openDevice()
	if err != nil {
		return nil, fmt.Errorf("snp: opening /dev/sev-guest: %w", err)
	}
	defer d.Close()
	var vmpl int
	if a.vmpl != nil {
		vmpl = int(*a.vmpl)
	}
	raw, certs, err := client.GetRawExtendedReportAtVmpl(d, rd, vmpl)
	if err == nil && len(raw) == 0 {
		// go-sev-guest returns no report and no error when the second
		// request still gets SNP_GUEST_VMM_ERR_INVALID_LEN, which happens
		// when the host's certificates grew after the length query.
		err = fmt.Errorf("the host's certificate table grew to %d bytes between the length query and the request", len(certs))
	}
	if err != nil {
		// A host that stores no certificates may reject the extended
		// request; the plain report still carries everything signed.
		var plainErr error
		if raw, plainErr = client.GetRawReportAtVmpl(d, rd, vmpl); plainErr != nil {
			return nil, fmt.Errorf("snp: /dev/sev-guest report: %w", errors.Join(err, plainErr))
		}
		certs = nil
	}
	if err := checkReport("/dev/sev-guest", raw, rd); err != nil {
		return nil, err
	}
	return &attest.Evidence{Format: string(attest.TEESNP), Data: raw, Aux: nonEmpty(certs)}, nil
}

// checkReport returns an error unless raw, the report that source
// returned, is a whole ATTESTATION_REPORT whose REPORT_DATA (bytes 0x50 to
// 0x8F) is rd. On configfs-tsm, a report with other report data belongs
// to a request that raced this one. On the ioctl path it is a driver or
// firmware fault. A verifier would reject it as stale either way.
func checkReport(source string, raw []byte, rd [64]byte) error {
	if len(raw) != ReportSize {
		return fmt.Errorf("snp: %s returned %d bytes, not a %d-byte ATTESTATION_REPORT", source, len(raw), ReportSize)
	}
	if !bytes.Equal(raw[0x50:0x90], rd[:]) {
		return fmt.Errorf("snp: %s returned a report whose REPORT_DATA %x is not the requested %x (another request raced this one, or the guest driver is faulty): retry the request, and check the driver if the mismatch repeats", source, raw[0x50:0x90], rd[:])
	}
	return nil
}

// nonEmpty returns nil for an empty or all-zero certificate table, which a
// host without stored certificates returns.
func nonEmpty(b []byte) []byte {
	for _, c := range b {
		if c != 0 {
			return b
		}
	}
	return nil
}
