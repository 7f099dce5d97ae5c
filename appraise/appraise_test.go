package appraise

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

func baseClaims() *attest.Claims {
	return &attest.Claims{
		TEE:         attest.TEESNP,
		Measurement: attest.Hex{0xaa, 0xbb},
		ReportData:  attest.Hex{1, 2, 3, 0, 0, 0},
		HostData:    attest.Hex{9},
		ChipID:      attest.Hex{7, 7},
		TCB: attest.TCB{Components: []attest.TCBComponent{
			{Name: "bootloader", Value: 4}, {Name: "snp", Value: 22},
		}},
	}
}

// tdxWithEvaluationNumber turns the claims into TDX claims whose
// tcb_evaluation_data_number attribute is n, or that lack it when n is nil.
func tdxWithEvaluationNumber(n any) func(*attest.Claims) {
	return func(c *attest.Claims) {
		c.TEE = attest.TEETDX
		if n != nil {
			c.SetAttribute(TCBEvaluationDataNumberAttribute, n)
		}
	}
}

// withVMPL sets the claims' vmpl attribute to v, or leaves it out when v is
// nil.
func withVMPL(v any) func(*attest.Claims) {
	return func(c *attest.Claims) {
		if v != nil {
			c.SetAttribute("vmpl", v)
		}
	}
}

func vmpl(v uint32) *uint32 { return &v }

func TestAppraise(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*attest.Claims)
		opts     Options
		wantRule string // empty: accepted
		wantText string
	}{
		{name: "strict default accepts", edit: func(*attest.Claims) {}},
		{name: "debug rejected", edit: func(c *attest.Claims) { c.Debug = true }, wantRule: "debug", wantText: "debug"},
		{name: "debug allowed", edit: func(c *attest.Claims) { c.Debug = true }, opts: Options{AllowDebug: true}},
		{name: "emulated rejected", edit: func(c *attest.Claims) { c.Emulated = true }, wantRule: "emulated", wantText: "emulated"},
		{name: "emulated allowed", edit: func(c *attest.Claims) { c.Emulated = true }, opts: Options{AllowEmulated: true}},
		{name: "up to date", edit: func(c *attest.Claims) { c.TCB.Status = attest.TCBUpToDate }},
		{name: "sw hardening accepted", edit: func(c *attest.Claims) { c.TCB.Status = attest.TCBSWHardeningNeeded }},
		{name: "out of date rejected", edit: func(c *attest.Claims) {
			c.TCB.Status = attest.TCBOutOfDate
			c.TCB.AdvisoryIDs = []string{"INTEL-SA-00837"}
		}, wantRule: "tcb-status", wantText: "(out of date) is not accepted, advisories INTEL-SA-00837"},
		{name: "out of date allowed", edit: func(c *attest.Claims) { c.TCB.Status = attest.TCBOutOfDate },
			opts: Options{TCBStatuses: []string{attest.TCBOutOfDate}}},
		{name: "configuration rejected", edit: func(c *attest.Claims) { c.TCB.Status = attest.TCBConfigurationAndSWHardeningNeeded },
			wantRule: "tcb-status", wantText: "configuration"},
		{name: "no matching level", edit: func(c *attest.Claims) { c.TCB.Status = attest.TCBNoMatchingLevel },
			wantRule: "tcb-status", wantText: "TCB level not supported"},
		{name: "no matching level listed", edit: func(c *attest.Claims) { c.TCB.Status = attest.TCBNoMatchingLevel },
			opts: Options{TCBStatuses: []string{attest.TCBNoMatchingLevel}}, wantRule: "tcb-status",
			wantText: "no option accepts a platform whose TCB is unknown"},
		{name: "no matching level undetermined allowed", edit: func(c *attest.Claims) { c.TCB.Status = attest.TCBNoMatchingLevel },
			opts: Options{AllowUndeterminedTCB: true}, wantRule: "tcb-status", wantText: "TCB level not supported"},
		{name: "not determined rejected", edit: func(c *attest.Claims) { c.TCB.Status = attest.TCBNotDetermined },
			wantRule: "tcb-status", wantText: "not determined"},
		{name: "not determined allowed", edit: func(c *attest.Claims) { c.TCB.Status = attest.TCBNotDetermined },
			opts: Options{AllowUndeterminedTCB: true}},
		{name: "required check missing", edit: func(c *attest.Claims) { c.Skip("qe-identity", true, "QE Identity missing") },
			wantRule: "required-check", wantText: "missing"},
		{name: "optional check missing", edit: func(c *attest.Claims) { c.Skip("crl", false, "no CRL") }},
		{name: "measurement match", edit: func(*attest.Claims) {}, opts: Options{Measurement: attest.Hex{0xaa, 0xbb}}},
		{name: "measurement mismatch", edit: func(*attest.Claims) {}, opts: Options{Measurement: attest.Hex{0xaa, 0xbc}},
			wantRule: "measurement", wantText: "aabb differs from the expected aabc"},
		{name: "report data prefix padded", edit: func(*attest.Claims) {}, opts: Options{ReportData: attest.Hex{1, 2, 3}}},
		{name: "report data mismatch", edit: func(*attest.Claims) {}, opts: Options{ReportData: attest.Hex{1, 2, 4}},
			wantRule: "report-data", wantText: "or correct --report-data"},
		{name: "report data longer than claim", edit: func(*attest.Claims) {}, opts: Options{ReportData: make(attest.Hex, 7)},
			wantRule: "report-data"},
		{name: "host data mismatch", edit: func(*attest.Claims) {}, opts: Options{HostData: attest.Hex{8}}, wantRule: "host-data"},
		{name: "host data prefix padded", edit: func(c *attest.Claims) { c.HostData = attest.Hex{9, 8, 0, 0} },
			opts: Options{HostData: attest.Hex{9, 8}}},
		{name: "host data padding not zero", edit: func(c *attest.Claims) { c.HostData = attest.Hex{9, 8, 0, 1} },
			opts: Options{HostData: attest.Hex{9, 8}}, wantRule: "host-data", wantText: "09080001 differs from the expected 09080000"},
		{name: "measurement shorter than expected", edit: func(*attest.Claims) {}, opts: Options{Measurement: attest.Hex{0xaa, 0xbb, 0}},
			wantRule: "measurement", wantText: "the measurement has 2 bytes, the expected value 3"},
		{name: "chip id mismatch", edit: func(*attest.Claims) {}, opts: Options{ChipID: attest.Hex{7, 8}}, wantRule: "chip-id",
			wantText: "or correct --chip-id"},
		{name: "min tcb met", edit: func(*attest.Claims) {}, opts: Options{MinTCB: map[string]uint64{"snp": 22, "bootloader": 3}}},
		{name: "min tcb below", edit: func(*attest.Claims) {}, opts: Options{MinTCB: map[string]uint64{"snp": 23}},
			wantRule: "min-tcb", wantText: "snp is 22, below the minimum 23"},
		{name: "min tcb unknown component", edit: func(*attest.Claims) {}, opts: Options{MinTCB: map[string]uint64{"pce_svn": 1}},
			wantRule: "min-tcb", wantText: "not in the snp claims"},
		{name: "evaluation number no minimum", edit: tdxWithEvaluationNumber(17)},
		{name: "evaluation number equal", edit: tdxWithEvaluationNumber(17), opts: Options{MinTCBEvaluationDataNumber: 17}},
		{name: "evaluation number above", edit: tdxWithEvaluationNumber(18), opts: Options{MinTCBEvaluationDataNumber: 17}},
		{name: "evaluation number below", edit: tdxWithEvaluationNumber(16), opts: Options{MinTCBEvaluationDataNumber: 17},
			wantRule: "min-tcb-evaluation-data-number", wantText: "TCB evaluation data number 16 (the lower of the TCB Info's and the QE Identity's) is below the minimum 17"},
		{name: "evaluation number below names fix", edit: tdxWithEvaluationNumber(16), opts: Options{MinTCBEvaluationDataNumber: 17},
			wantRule: "min-tcb-evaluation-data-number", wantText: "fetch the current TCB Info and QE Identity from Intel PCS, or lower --min-tcb-evaluation-data-number"},
		{name: "evaluation number from JSON", edit: tdxWithEvaluationNumber(float64(16)), opts: Options{MinTCBEvaluationDataNumber: 17},
			wantRule: "min-tcb-evaluation-data-number", wantText: "number 16 "},
		{name: "evaluation number missing", edit: tdxWithEvaluationNumber(nil), opts: Options{MinTCBEvaluationDataNumber: 17},
			wantRule: "min-tcb-evaluation-data-number", wantText: "no TCB Info or QE Identity was verified"},
		{name: "evaluation number not a number", edit: tdxWithEvaluationNumber("17"), opts: Options{MinTCBEvaluationDataNumber: 17},
			wantRule: "min-tcb-evaluation-data-number", wantText: "have no TCB evaluation data number"},
		{name: "evaluation number fraction", edit: tdxWithEvaluationNumber(17.5), opts: Options{MinTCBEvaluationDataNumber: 17},
			wantRule: "min-tcb-evaluation-data-number"},
		{name: "evaluation number sgx below", edit: func(c *attest.Claims) {
			tdxWithEvaluationNumber(3)(c)
			c.TEE = attest.TEESGX
		}, opts: Options{MinTCBEvaluationDataNumber: 17}, wantRule: "min-tcb-evaluation-data-number", wantText: "number 3 "},
		{name: "evaluation number other TEE", edit: func(*attest.Claims) {}, opts: Options{MinTCBEvaluationDataNumber: 17}},
		{name: "vmpl any", edit: withVMPL(uint32(3))},
		{name: "vmpl equal maximum", edit: withVMPL(uint32(1)), opts: Options{MaxVMPL: vmpl(1)}},
		{name: "vmpl below maximum", edit: withVMPL(uint32(0)), opts: Options{MaxVMPL: vmpl(1)}},
		{name: "vmpl above maximum", edit: withVMPL(uint32(1)), opts: Options{MaxVMPL: vmpl(0)},
			wantRule: "max-vmpl", wantText: "the SEV-SNP report is from VMPL 1, above the maximum VMPL 0"},
		{name: "vmpl above names fix", edit: withVMPL(uint32(2)), opts: Options{MaxVMPL: vmpl(0)},
			wantRule: "max-vmpl", wantText: "request the report from VMPL 0 or lower, or raise --max-vmpl to 2"},
		{name: "vmpl from JSON", edit: withVMPL(float64(1)), opts: Options{MaxVMPL: vmpl(0)},
			wantRule: "max-vmpl", wantText: "VMPL 1,"},
		{name: "vmpl missing", edit: withVMPL(nil), opts: Options{MaxVMPL: vmpl(0)},
			wantRule: "max-vmpl", wantText: "the snp claims have no VMPL"},
		{name: "vmpl not a number", edit: withVMPL("0"), opts: Options{MaxVMPL: vmpl(0)},
			wantRule: "max-vmpl", wantText: "have no VMPL"},
		{name: "vmpl other TEE", edit: func(c *attest.Claims) {
			withVMPL(uint32(2))(c)
			c.TEE = attest.TEETDX
		}, opts: Options{MaxVMPL: vmpl(0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := baseClaims()
			tc.edit(c)
			d := Appraise(c, tc.opts)
			if tc.wantRule == "" {
				if !d.Accepted || d.Err() != nil {
					t.Fatalf("rejected: %v", d.Err())
				}
				return
			}
			if d.Accepted {
				t.Fatal("accepted, want rejection")
			}
			if d.Reasons[0].Rule != tc.wantRule {
				t.Errorf("rule = %q, want %q", d.Reasons[0].Rule, tc.wantRule)
			}
			err := d.Err()
			if !errors.Is(err, attest.ErrAppraisal) {
				t.Errorf("error %v is not ErrAppraisal", err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not contain %q", err, tc.wantText)
			}
		})
	}
}

func TestAppraiseListsEveryReason(t *testing.T) {
	c := baseClaims()
	c.Debug = true
	c.Emulated = true
	c.TCB.Status = attest.TCBRevoked
	d := Appraise(c, Options{})
	var rules []string
	for _, r := range d.Reasons {
		rules = append(rules, r.Rule)
	}
	if got := strings.Join(rules, ","); got != "emulated,debug,tcb-status" {
		t.Errorf("rules = %s, want emulated,debug,tcb-status", got)
	}
}

func TestParseMinTCB(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]uint64
		wantErr bool
	}{
		{in: "", want: map[string]uint64{}},
		{in: "bootloader=4, snp=0x16", want: map[string]uint64{"bootloader": 4, "snp": 22}},
		{in: "snp", wantErr: true},
		{in: "=4", wantErr: true},
		{in: "snp=-1", wantErr: true},
		{in: "snp=abc", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseMinTCB(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseMinTCB(%q) succeeded, want an error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMinTCB(%q): %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseMinTCB(%q) = %v, want %v", tc.in, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("ParseMinTCB(%q)[%s] = %d, want %d", tc.in, k, got[k], v)
			}
		}
	}
}

// A status name that no verifier reports, such as a misspelt or lower-case
// one, is an error, because it would silently match nothing.
func TestValidateTCBStatusesUnknown(t *testing.T) {
	for _, status := range []string{"uptodate", "UpToDate ", "SWHardening", ""} {
		err := ValidateTCBStatuses([]string{attest.TCBUpToDate, status})
		if err == nil {
			t.Errorf("ValidateTCBStatuses accepted %q", status)
			continue
		}
		for _, expected := range []string{fmt.Sprintf("%q is unknown", status), "ConfigurationAndSWHardeningNeeded", "NotDetermined"} {
			if !strings.Contains(err.Error(), expected) {
				t.Errorf("error %q lacks %q", err, expected)
			}
		}
	}
	if err := ValidateTCBStatuses(attest.IntelTCBLevelStatuses); err != nil {
		t.Errorf("ValidateTCBStatuses of Intel's statuses: %v", err)
	}
}

// NoMatchingTcbLevel cannot be accepted, so listing it is an error that
// names the status and why, and its rejection offers no flag to accept it.
func TestNoMatchingTCBLevelNeverAccepted(t *testing.T) {
	if err := ValidateTCBStatuses([]string{attest.TCBOutOfDate, attest.TCBRevoked, attest.TCBNotDetermined}); err != nil {
		t.Errorf("ValidateTCBStatuses of accepted statuses: %v", err)
	}
	err := ValidateTCBStatuses([]string{attest.TCBUpToDate, attest.TCBNoMatchingLevel})
	if err == nil {
		t.Fatal("ValidateTCBStatuses accepted NoMatchingTcbLevel")
	}
	for _, want := range []string{"NoMatchingTcbLevel", "no TCB level of Intel's TCB Info matches the platform", "its TCB is unknown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	c := baseClaims()
	c.TCB.Status = attest.TCBNoMatchingLevel
	reasons := CheckTCBStatus(c, Options{TCBStatuses: []string{attest.TCBNoMatchingLevel, attest.TCBUpToDate}})
	if len(reasons) != 1 {
		t.Fatalf("reasons %+v, want one", reasons)
	}
	if strings.Contains(reasons[0].Message, "--tcb-status") {
		t.Errorf("message %q offers --tcb-status", reasons[0].Message)
	}
	if reasons[0].Expected != attest.TCBUpToDate {
		t.Errorf("expected %q, want %q", reasons[0].Expected, attest.TCBUpToDate)
	}
}
