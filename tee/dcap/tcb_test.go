package dcap

import (
	"errors"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

func TestConverge(t *testing.T) {
	for _, tc := range []struct{ platform, other, want string }{
		{attest.TCBUpToDate, attest.TCBUpToDate, attest.TCBUpToDate},
		{attest.TCBUpToDate, attest.TCBOutOfDate, attest.TCBOutOfDate},
		{attest.TCBSWHardeningNeeded, attest.TCBOutOfDate, attest.TCBOutOfDate},
		{attest.TCBConfigurationNeeded, attest.TCBOutOfDate, attest.TCBOutOfDateConfigurationNeeded},
		{attest.TCBConfigurationAndSWHardeningNeeded, attest.TCBOutOfDate, attest.TCBOutOfDateConfigurationNeeded},
		{attest.TCBOutOfDate, attest.TCBOutOfDate, attest.TCBOutOfDate},
		{attest.TCBSWHardeningNeeded, attest.TCBUpToDate, attest.TCBSWHardeningNeeded},
		{attest.TCBUpToDate, attest.TCBRevoked, attest.TCBRevoked},
		{attest.TCBNoMatchingLevel, attest.TCBRevoked, attest.TCBNoMatchingLevel},
		{attest.TCBUpToDate, attest.TCBNoMatchingLevel, attest.TCBNoMatchingLevel},
	} {
		if got := converge(tc.platform, tc.other); got != tc.want {
			t.Errorf("converge(%s, %s) = %s, expected %s", tc.platform, tc.other, got, tc.want)
		}
	}
}

// tdxPlatform returns the emulated TDX 1.5 platform's TCB Info, PCK
// extensions and TD report.
func tdxPlatform(t *testing.T) (*TCBInfo, *PCKExtensions, *TDReport) {
	t.Helper()
	e, err := NewEmulator(EmulatorOptions{TEE: "tdx", QuoteVersion: 5})
	if err != nil {
		t.Fatal(err)
	}
	ext, err := PCKExtensionsFromCert(e.pck)
	if err != nil {
		t.Fatal(err)
	}
	td, err := ParseTDReport(e.body([64]byte{}))
	if err != nil {
		t.Fatal(err)
	}
	return e.tcbInfo(time.Now(), time.Now().Add(time.Hour)), ext, td
}

func TestEvaluateTDXModule(t *testing.T) {
	t.Run("up to date", func(t *testing.T) {
		info, ext, td := tdxPlatform(t)
		ev, err := EvaluatePlatform(info, ext, td)
		if err != nil || ev.Status != attest.TCBUpToDate || ev.ModuleStatus != attest.TCBUpToDate {
			t.Fatalf("status %+v, %v; expected UpToDate", ev, err)
		}
	})
	t.Run("module out of date", func(t *testing.T) {
		info, ext, td := tdxPlatform(t)
		td.TEETCBSVN[0] = emulatedModuleSVN - 1
		ev, err := EvaluatePlatform(info, ext, td)
		if err != nil || ev.Status != attest.TCBOutOfDate {
			t.Fatalf("status %+v, %v; expected OutOfDate", ev, err)
		}
		if len(ev.AdvisoryIDs) != 1 || ev.AdvisoryIDs[0] != "INTEL-SA-00001" {
			t.Errorf("advisories %v, expected the module level's", ev.AdvisoryIDs)
		}
	})
	t.Run("module below every level", func(t *testing.T) {
		info, ext, td := tdxPlatform(t)
		td.TEETCBSVN[0] = 1
		ev, err := EvaluatePlatform(info, ext, td)
		if err != nil || ev.Status != attest.TCBNoMatchingLevel {
			t.Fatalf("status %+v, %v; expected NoMatchingTcbLevel", ev, err)
		}
	})
	t.Run("module identity missing", func(t *testing.T) {
		info, ext, td := tdxPlatform(t)
		td.TEETCBSVN[1] = 2
		if _, err := EvaluatePlatform(info, ext, td); !errors.Is(err, attest.ErrCollateralMissing) {
			t.Fatalf("error %v, expected a missing TDX module identity", err)
		}
	})
	t.Run("module signer differs", func(t *testing.T) {
		info, ext, td := tdxPlatform(t)
		td.MRSignerSEAM[0] = 1
		if _, err := EvaluatePlatform(info, ext, td); err == nil {
			t.Fatal("a TDX module of another signer was accepted")
		}
	})
	t.Run("module components judged by identity", func(t *testing.T) {
		info, ext, td := tdxPlatform(t)
		// Byte 0 below the level's TDX component 0 is skipped for a
		// module of major version 1, and then judged by the module level.
		info.TCBLevels[0].TCB.TDXComponents[0].SVN = 200
		ev, err := EvaluatePlatform(info, ext, td)
		if err != nil || ev.PlatformStatus != attest.TCBUpToDate {
			t.Fatalf("status %+v, %v; expected the platform UpToDate", ev, err)
		}
		td.TEETCBSVN[1] = 0
		info.TDXModuleIdentities = nil
		ev, err = EvaluatePlatform(info, ext, td)
		if err != nil || ev.PlatformStatus == attest.TCBUpToDate {
			t.Fatalf("status %+v, %v; a TDX 1.0 module must be judged by component 0", ev, err)
		}
	})
	t.Run("platform tdx component below every level", func(t *testing.T) {
		info, ext, td := tdxPlatform(t)
		td.TEETCBSVN[2] = 2
		ev, err := EvaluatePlatform(info, ext, td)
		if err != nil || ev.Status != attest.TCBNoMatchingLevel {
			t.Fatalf("status %+v, %v; expected NoMatchingTcbLevel", ev, err)
		}
	})
}

func TestEvaluateSGXLevels(t *testing.T) {
	for _, tc := range []struct {
		name   string
		comp0  int
		pcesvn uint16
		want   string
	}{
		{"latest", 0, emulatedPCESVN, attest.TCBUpToDate},
		{"component below latest", -1, emulatedPCESVN, attest.TCBOutOfDate},
		{"pcesvn below latest", 0, emulatedPCESVN - 1, attest.TCBOutOfDate},
		{"pcesvn below every level", 0, emulatedPCESVN - 2, attest.TCBNoMatchingLevel},
		{"component below every level", -2, emulatedPCESVN, attest.TCBNoMatchingLevel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, ext, _ := tdxPlatform(t)
			info.ID = "SGX"
			ext.CompSVN[0] = uint8(int(ext.CompSVN[0]) + tc.comp0)
			ext.PCESVN = tc.pcesvn
			ev, err := EvaluatePlatform(info, ext, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Status != tc.want {
				t.Errorf("status %s, expected %s", ev.Status, tc.want)
			}
		})
	}
}

// TestAdviseRelaunch starts from a TD launched on module SVN 5, which the
// emulated TCB Info lists as OutOfDate. The running module (TEE_TCB_SVN2)
// has SVN 6, the latest, and each case changes one input.
func TestAdviseRelaunch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*TCBInfo, *PCKExtensions, *TDReport)
		qe      string
		want    bool
		wantErr error
		state   string
	}{
		{name: "module updated", qe: attest.TCBUpToDate, want: true, state: attest.TCBOutOfDate},
		{name: "QE not checked", want: true, state: attest.TCBOutOfDate},
		{name: "running module out of date", edit: func(_ *TCBInfo, _ *PCKExtensions, td *TDReport) {
			td.TEETCBSVN2[0] = emulatedModuleSVN - 1
		}, state: attest.TCBOutOfDate},
		{name: "running component 2 old", edit: func(_ *TCBInfo, _ *PCKExtensions, td *TDReport) {
			td.TEETCBSVN2[2]--
		}, state: attest.TCBOutOfDate},
		{name: "running module unlisted", edit: func(_ *TCBInfo, _ *PCKExtensions, td *TDReport) {
			td.TEETCBSVN2[1] = 2
		}, wantErr: attest.ErrCollateralMissing, state: attest.TCBOutOfDate},
		{name: "module identity without levels", edit: func(info *TCBInfo, _ *PCKExtensions, td *TDReport) {
			td.TEETCBSVN2[1] = 2
			id := info.TDXModuleIdentities[0]
			id.ID, id.TCBLevels = "TDX_02", nil
			info.TDXModuleIdentities = append(info.TDXModuleIdentities, id)
		}, wantErr: attest.ErrMalformed, state: attest.TCBOutOfDate},
		{name: "latest level too short", edit: func(info *TCBInfo, _ *PCKExtensions, _ *TDReport) {
			latest := info.TCBLevels[0]
			latest.TCB.TDXComponents = latest.TCB.TDXComponents[:2]
			info.TCBLevels = append([]TCBLevel{latest}, info.TCBLevels...)
		}, wantErr: attest.ErrMalformed, state: attest.TCBOutOfDate},
		{name: "major version 0 current", edit: func(_ *TCBInfo, _ *PCKExtensions, td *TDReport) {
			td.TEETCBSVN2[0], td.TEETCBSVN2[1] = emulatedTDXSVN[0], 0
		}, want: true, state: attest.TCBOutOfDate},
		{name: "major version 0 old", edit: func(_ *TCBInfo, _ *PCKExtensions, td *TDReport) {
			td.TEETCBSVN2[0], td.TEETCBSVN2[1] = emulatedTDXSVN[0]-1, 0
		}, state: attest.TCBOutOfDate},
		{name: "QE out of date", qe: attest.TCBOutOfDate, state: attest.TCBOutOfDate},
		{name: "QE revoked", qe: attest.TCBRevoked, state: attest.TCBOutOfDate},
		{name: "SGX level out of date", edit: func(_ *TCBInfo, ext *PCKExtensions, _ *TDReport) {
			ext.CompSVN[0]--
		}, state: attest.TCBOutOfDate},
		{name: "SGX level configuration needed", edit: func(info *TCBInfo, _ *PCKExtensions, _ *TDReport) {
			info.TCBLevels[0].TCBStatus = attest.TCBConfigurationNeeded
		}, want: true, state: attest.TCBOutOfDateConfigurationNeeded},
		{name: "TDX 1.0 report", edit: func(_ *TCBInfo, _ *PCKExtensions, td *TDReport) {
			td.Is15 = false
		}, state: attest.TCBOutOfDate},
		{name: "launch module current", edit: func(_ *TCBInfo, _ *PCKExtensions, td *TDReport) {
			td.TEETCBSVN[0] = emulatedModuleSVN
		}, state: attest.TCBUpToDate},
		{name: "SGX TCB Info", edit: func(info *TCBInfo, _ *PCKExtensions, _ *TDReport) {
			info.ID = "SGX"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, ext, td := tdxPlatform(t)
			td.TEETCBSVN2 = td.TEETCBSVN
			td.TEETCBSVN[0] = emulatedModuleSVN - 1
			if tc.edit != nil {
				tc.edit(info, ext, td)
			}
			got, err := EvaluatePlatform(info, ext, td)
			if err != nil {
				t.Fatal(err)
			}
			if tc.state != "" && got.Status != tc.state {
				t.Fatalf("status %s before the advice, expected %s", got.Status, tc.state)
			}
			got.QEStatus = tc.qe
			got.Status = converge(got.Status, tc.qe)
			got.RelaunchAdvised = !tc.want
			err = AdviseRelaunch(info, ext, td, got)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("error %v, expected %v", err, tc.wantErr)
			}
			if got.RelaunchAdvised != tc.want {
				t.Errorf("relaunch advised %v, expected %v (TEE_TCB_SVN %x, TEE_TCB_SVN2 %x)", got.RelaunchAdvised, tc.want, td.TEETCBSVN, td.TEETCBSVN2)
			}
		})
	}
}
