package snp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	sevclient "github.com/google/go-sev-guest/client"
	labi "github.com/google/go-sev-guest/client/linuxabi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/tsmtest"
)

// fakeTSM returns a configfs-tsm client whose report subsystem returns
// provider as its provider name and reports from e.
func fakeTSM(t *testing.T, e *Emulator, provider string) configfsi.Client {
	t.Helper()
	outblob := func(inblob []byte) ([]byte, error) {
		ev, err := e.Attest(context.Background(), inblob)
		if err != nil {
			return nil, err
		}
		return ev.Data, nil
	}
	return fakeTSMOutblob(t, e, provider, outblob)
}

// fakeTSMOutblob is fakeTSM with the outblob that outblob returns for the
// inblob written.
func fakeTSMOutblob(t *testing.T, e *Emulator, provider string, outblob func(inblob []byte) ([]byte, error)) configfsi.Client {
	t.Helper()
	sub := tsmtest.NewReportSubsystem(provider, func(entry *faketsm.ReportEntry) ([]byte, error) {
		return outblob(entry.InAttrs["inblob"].Value)
	})
	readAttr := sub.ReadAttr
	sub.ReadAttr = func(entry *faketsm.ReportEntry, attr string) ([]byte, error) {
		if attr == "auxblob" {
			return e.certTable(), nil
		}
		return readAttr(entry, attr)
	}
	return tsmtest.NewClient(sub)
}

func TestAttesterConfigfsTSM(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	a, err := newTSMAttester(fakeTSM(t, e, "sev_guest"))
	if err != nil {
		t.Fatalf("newTSMAttester: %v", err)
	}
	ev, err := a.Attest(context.Background(), []byte("tsm nonce"))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if len(ev.Aux) == 0 {
		t.Fatal("Evidence.Aux is empty, want the auxblob certificate table")
	}
	claims, err := attest.Verify(context.Background(), *ev, attest.Options{TrustAnchors: anchors(e)})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if string(claims.ReportData[:9]) != "tsm nonce" {
		t.Errorf("ReportData = %s, want it to start with the request's report data", claims.ReportData)
	}
}

func TestAttesterOtherProviderIsNoDevice(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	if _, err := newTSMAttester(fakeTSM(t, e, "tdx_guest")); !errors.Is(err, attest.ErrNoDevice) {
		t.Errorf("newTSMAttester with provider tdx_guest: error %v, want ErrNoDevice", err)
	}
}

func TestAttesterReportDataTooLong(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	a, err := newTSMAttester(fakeTSM(t, e, "sev_guest"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Attest(context.Background(), make([]byte, 65)); err == nil {
		t.Error("Attest accepted 65 bytes of report data")
	}
}

func TestAttesterConfigfsTSMRejectsBadOutblob(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	stale, err := e.Attest(context.Background(), []byte("another request"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		outblob []byte
		want    string
	}{
		{"empty outblob", nil, "returned 0 bytes"},
		{"short outblob", stale.Data[:0x90], "returned 144 bytes"},
		{"report of another request", stale.Data, "REPORT_DATA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeTSMOutblob(t, e, "sev_guest", func([]byte) ([]byte, error) { return tc.outblob, nil })
			a, err := newTSMAttester(c)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := a.Attest(context.Background(), []byte("tsm nonce"))
			tsmtest.CheckOutblobRejected(t, ev, err, tc.want)
		})
	}
}

// fakeDevice serves /dev/sev-guest ioctls with reports from an emulator.
type fakeDevice struct {
	e     *Emulator
	certs []byte
	// growCerts makes the certificate table grow by one byte after each
	// length query, as when the host installs certificates meanwhile.
	growCerts bool
	// reportData, when set, replaces the request's report data, as in a
	// report of another request.
	reportData []byte
	// block, when set, delays every ioctl until it is closed.
	block chan struct{}
	// vmpls records the VMPL of each report request.
	vmpls []uint32
}

func (d *fakeDevice) Open(string) error        { return nil }
func (d *fakeDevice) Close() error             { return nil }
func (d *fakeDevice) Product() *spb.SevProduct { return abi.DefaultSevProduct() }

func (d *fakeDevice) Ioctl(command uintptr, arg any) (uintptr, error) {
	if d.block != nil {
		<-d.block
	}
	req, ok := arg.(*labi.SnpUserGuestRequest)
	if !ok {
		return 0, syscall.EINVAL
	}
	var reqData *labi.SnpReportReqABI
	switch command {
	case labi.IocSnpGetReport:
		reqData = req.ReqData.(*labi.SnpReportReqABI)
	case labi.IocSnpGetExtendedReport:
		ext := req.ReqData.(*labi.SnpExtendedReportReq)
		if d.certs == nil {
			return 0, syscall.EIO
		}
		if int(ext.CertsLength) < len(d.certs) {
			ext.CertsLength = uint32(len(d.certs))
			req.FwErr = uint64(abi.GuestRequestInvalidLength)
			if d.growCerts {
				d.certs = append(d.certs, 0)
			}
			return 0, syscall.EIO
		}
		copy(ext.Certs, d.certs)
		reqData = &ext.Data
	default:
		return 0, syscall.EINVAL
	}
	d.vmpls = append(d.vmpls, reqData.Vmpl)
	rd := reqData.ReportData[:]
	if d.reportData != nil {
		rd = d.reportData
	}
	ev, err := d.e.Attest(context.Background(), rd)
	if err != nil {
		return 0, err
	}
	copy(req.RespData.(*labi.SnpReportRespABI).Data[:], ev.Data)
	return 0, nil
}

func TestAttesterDevice(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	tests := []struct {
		name    string
		certs   []byte
		wantAux bool
	}{
		{"extended report", e.certTable(), true},
		{"host without certificates", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := &fakeDevice{e: e, certs: tc.certs}
			a, err := newDeviceAttester(func() (sevclient.Device, error) { return dev, nil })
			if err != nil {
				t.Fatal(err)
			}
			ev, err := a.Attest(context.Background(), []byte("ioctl"))
			if err != nil {
				t.Fatalf("Attest: %v", err)
			}
			if got := len(ev.Aux) > 0; got != tc.wantAux {
				t.Errorf("Evidence.Aux present = %v, want %v", got, tc.wantAux)
			}
			opts := attest.Options{Collateral: e.Collateral(), TrustAnchors: anchors(e)}
			if _, err := attest.Verify(context.Background(), *ev, opts); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

// The ioctl path requests VMPL 0 unless SetVMPL chose another, in the
// extended request and in the plain request that follows its failure.
func TestAttesterDeviceVMPL(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	tests := []struct {
		name  string
		vmpl  *uint32
		certs []byte
		want  []uint32
	}{
		{"default extended report", nil, e.certTable(), []uint32{0}},
		{"VMPL 2 extended report", new(uint32(2)), e.certTable(), []uint32{2}},
		{"VMPL 3 plain report", new(uint32(3)), nil, []uint32{3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := &fakeDevice{e: e, certs: tc.certs}
			a, err := newDeviceAttester(func() (sevclient.Device, error) { return dev, nil })
			if err != nil {
				t.Fatal(err)
			}
			if tc.vmpl != nil {
				if err := a.SetVMPL(*tc.vmpl); err != nil {
					t.Fatalf("SetVMPL: %v", err)
				}
			}
			if _, err := a.Attest(context.Background(), []byte("ioctl")); err != nil {
				t.Fatalf("Attest: %v", err)
			}
			if !slices.Equal(dev.vmpls, tc.want) {
				t.Errorf("requested VMPLs = %v, expected %v", dev.vmpls, tc.want)
			}
		})
	}
}

// The configfs-tsm path writes the VMPL that SetVMPL chose to privlevel.
func TestAttesterConfigfsTSMVMPL(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	var privlevel string
	sub := tsmtest.NewReportSubsystem("sev_guest", func(entry *faketsm.ReportEntry) ([]byte, error) {
		privlevel = strings.TrimSpace(string(entry.InAttrs["privlevel"].Value))
		ev, err := e.Attest(context.Background(), entry.InAttrs["inblob"].Value)
		if err != nil {
			return nil, err
		}
		return ev.Data, nil
	})
	readAttr := sub.ReadAttr
	sub.ReadAttr = func(entry *faketsm.ReportEntry, attr string) ([]byte, error) {
		if attr == "auxblob" {
			return e.certTable(), nil
		}
		return readAttr(entry, attr)
	}
	a, err := newTSMAttester(tsmtest.NewClient(sub))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetVMPL(2); err != nil {
		t.Fatalf("SetVMPL: %v", err)
	}
	if _, err := a.Attest(context.Background(), []byte("tsm nonce")); err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if privlevel != "2" {
		t.Errorf("privlevel = %q, expected 2", privlevel)
	}
}

func TestAttesterSetVMPLOutOfRange(t *testing.T) {
	var a HardwareAttester
	err := a.SetVMPL(4)
	if err == nil {
		t.Fatal("SetVMPL accepted VMPL 4")
	}
	if !strings.Contains(err.Error(), "VMPL 4 is out of range: use 0 to 3") {
		t.Errorf("SetVMPL error = %v, expected one naming the range", err)
	}
	if a.vmpl != nil {
		t.Errorf("SetVMPL kept VMPL %d after rejecting it", *a.vmpl)
	}
}

func TestAttesterDeviceMissing(t *testing.T) {
	_, err := newDeviceAttester(func() (sevclient.Device, error) { return nil, os.ErrNotExist })
	if !errors.Is(err, attest.ErrNoDevice) {
		t.Errorf("newDeviceAttester without a device: error %v, want ErrNoDevice", err)
	}
}

func TestAttesterDeviceCertificatesGrow(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	dev := &fakeDevice{e: e, certs: e.certTable(), growCerts: true}
	a, err := newDeviceAttester(func() (sevclient.Device, error) { return dev, nil })
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), []byte("ioctl"))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if len(ev.Data) != ReportSize {
		t.Fatalf("evidence is %d bytes, expected the %d-byte report of the plain request", len(ev.Data), ReportSize)
	}
	if ev.Aux != nil {
		t.Errorf("Evidence.Aux has %d bytes, expected none after the extended request failed", len(ev.Aux))
	}
	opts := attest.Options{Collateral: e.Collateral(), TrustAnchors: anchors(e)}
	if _, err := attest.Verify(context.Background(), *ev, opts); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestAttesterDeviceRejectsOtherReportData(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	dev := &fakeDevice{e: e, certs: e.certTable(), reportData: []byte("another request")}
	a, err := newDeviceAttester(func() (sevclient.Device, error) { return dev, nil })
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Attest(context.Background(), []byte("ioctl"))
	if err == nil {
		t.Fatal("Attest accepted a report whose REPORT_DATA is another request's")
	}
	if !strings.Contains(err.Error(), "REPORT_DATA") {
		t.Errorf("error %q does not name REPORT_DATA", err)
	}
	if !strings.Contains(err.Error(), "/dev/sev-guest") {
		t.Errorf("error %q does not name /dev/sev-guest", err)
	}
}

func TestAttesterDeviceDeadline(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	dev := &fakeDevice{e: e, certs: e.certTable(), block: make(chan struct{})}
	a, err := newDeviceAttester(func() (sevclient.Device, error) { return dev, nil })
	if err != nil {
		t.Fatal(err)
	}
	// The device returns its report after 2 s, long after the caller's deadline.
	release := time.AfterFunc(2*time.Second, func() { close(dev.block) })
	// Release the request that Attest abandons when the test ends.
	t.Cleanup(func() {
		if release.Stop() {
			close(dev.block)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = a.Attest(ctx, []byte("ioctl"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, expected context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Attest returned after %v, expected soon after the 50 ms deadline", elapsed)
	}
}

// raceOnce makes another writer change the report entry of sub's first
// outblob read, as a concurrent configfs-tsm writer would, and returns a
// counter of the outblob reads.
func raceOnce(sub *faketsm.ReportSubsystem) *int {
	reads := 0
	readAttr := sub.ReadAttr
	sub.ReadAttr = func(entry *faketsm.ReportEntry, attr string) ([]byte, error) {
		if attr == "outblob" {
			reads++
			if reads == 1 {
				entry.WriteGeneration++
			}
		}
		return readAttr(entry, attr)
	}
	return &reads
}

// A report entry that another writer changed once is requested again.
func TestAttesterConfigfsTSMRetriesRace(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	c := fakeTSM(t, e, "sev_guest")
	reads := raceOnce(c.(*faketsm.Client).Subsystems["report"].(*faketsm.ReportSubsystem))
	a, err := newTSMAttester(c)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), []byte("tsm nonce"))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if *reads != 2 {
		t.Errorf("%d outblob reads, expected 2", *reads)
	}
	if _, err := attest.Verify(context.Background(), *ev, attest.Options{TrustAnchors: anchors(e)}); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// listingClient is a configfs-tsm client whose report entries list the
// attribute files of dir, a stand-in for the kernel's configfs directory.
// The stand-in is needed because faketsm cannot list an entry.
type listingClient struct {
	configfsi.Client
	dir string
}

func (c listingClient) ReadDir(string) ([]os.DirEntry, error) { return os.ReadDir(c.dir) }

// A report entry without an auxblob gives a report without certificates,
// which verifies with the VCEK from the collateral.
func TestAttesterConfigfsTSMWithoutAuxBlob(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	c := fakeTSM(t, e, "sev_guest")
	sub := c.(*faketsm.Client).Subsystems["report"].(*faketsm.ReportSubsystem)
	readAttr := sub.ReadAttr
	sub.ReadAttr = func(entry *faketsm.ReportEntry, attr string) ([]byte, error) {
		if attr == "auxblob" {
			return nil, os.ErrNotExist
		}
		return readAttr(entry, attr)
	}
	dir := t.TempDir()
	for _, name := range []string{"generation", "inblob", "outblob", "privlevel", "privlevel_floor", "provider"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := newTSMAttester(listingClient{Client: c, dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), []byte("tsm nonce"))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if ev.Aux != nil {
		t.Errorf("Evidence.Aux has %d bytes, expected none", len(ev.Aux))
	}
	claims, err := attest.Verify(context.Background(), *ev, attest.Options{Collateral: e.Collateral(), TrustAnchors: anchors(e)})
	if err != nil {
		t.Fatalf("Verify with the VCEK from the collateral: %v", err)
	}
	if string(claims.ReportData[:9]) != "tsm nonce" {
		t.Errorf("ReportData = %s, expected it to start with the request's report data", claims.ReportData)
	}
}

// An auxblob that the entry lists but that cannot be read still fails the
// report.
func TestAttesterConfigfsTSMAuxBlobReadError(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	c := fakeTSM(t, e, "sev_guest")
	sub := c.(*faketsm.Client).Subsystems["report"].(*faketsm.ReportSubsystem)
	readAttr := sub.ReadAttr
	sub.ReadAttr = func(entry *faketsm.ReportEntry, attr string) ([]byte, error) {
		if attr == "auxblob" {
			return nil, errors.New("injected auxblob error")
		}
		return readAttr(entry, attr)
	}
	dir := t.TempDir()
	for _, name := range []string{"auxblob", "generation", "inblob", "outblob", "provider"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := newTSMAttester(listingClient{Client: c, dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Attest(context.Background(), []byte("tsm nonce"))
	if err == nil {
		t.Fatal("Attest succeeded, expected the auxblob read error")
	}
	if !strings.Contains(err.Error(), "injected auxblob error") {
		t.Errorf("error %v, expected the auxblob read error", err)
	}
}
