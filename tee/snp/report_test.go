package snp

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

func TestParseReportVersions(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	base := signedReport(t, e, nil)
	tests := []struct {
		version uint32
		kind    error
	}{
		{0, attest.ErrUnsupported},
		{1, attest.ErrUnsupported},
		{2, nil},
		{3, nil},
		{4, nil},
		{5, nil},
		{6, attest.ErrUnsupported},
		{0xffffffff, attest.ErrUnsupported},
	}
	for _, tc := range tests {
		data := append([]byte(nil), base...)
		binary.LittleEndian.PutUint32(data, tc.version)
		if tc.version == 2 {
			data[0x188], data[0x189], data[0x18A] = 0, 0, 0 // reserved in version 2
		}
		_, err := ParseReport(data)
		switch {
		case tc.kind == nil && err != nil:
			t.Errorf("version %d: ParseReport: %v", tc.version, err)
		case tc.kind != nil && !errors.Is(err, tc.kind):
			t.Errorf("version %d: ParseReport error = %v, want kind %v", tc.version, err, tc.kind)
		case tc.kind != nil && !strings.Contains(err.Error(), "version "+strconv.FormatUint(uint64(tc.version), 10)):
			t.Errorf("version %d: error %q does not name the version", tc.version, err)
		}
	}
}

func TestParseReportReservedFields(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	base := signedReport(t, e, nil)
	tests := []struct {
		name    string
		offset  int
		version uint32
		kind    error
	}{
		{"reserved 0x4C", 0x4C, 3, attest.ErrMalformed},
		{"CPUID bytes in version 2", 0x188, 2, attest.ErrMalformed},
		{"reserved after CPUID", 0x18B, 3, attest.ErrMalformed},
		{"mitigation vector in version 3", 0x1F8, 3, attest.ErrMalformed},
		{"reserved after CPUID in version 4", 0x18B, 4, attest.ErrMalformed},
		{"end of reserved after CPUID in version 4", 0x19F, 4, attest.ErrMalformed},
		{"mitigation vector in version 4", 0x1F8, 4, attest.ErrMalformed},
		{"end of reserved before signature in version 4", 0x29F, 4, attest.ErrMalformed},
		{"mitigation vector in version 5", 0x1F8, 5, nil},
		{"reserved after mitigation vectors", 0x208, 5, attest.ErrMalformed},
		{"signature tail", 0x400, 3, attest.ErrMalformed},
		{"signer info reserved bit", 0x49, 3, attest.ErrMalformed},
		{"signature algorithm", 0x34, 3, attest.ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := append([]byte(nil), base...)
			binary.LittleEndian.PutUint32(data, tc.version)
			if tc.version == 2 && tc.offset != 0x188 {
				data[0x188], data[0x189], data[0x18A] = 0, 0, 0
			}
			data[tc.offset] ^= 0x20
			_, err := ParseReport(data)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("ParseReport: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("ParseReport error = %v, want kind %v", err, tc.kind)
			}
		})
	}
}

func TestReportMarshalRoundTrip(t *testing.T) {
	for _, c := range corpus.Cases(t, "snp") {
		data := c.EvidenceBytes(t)
		r, err := ParseReport(data)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if got := r.marshal(); string(got) != string(data) {
			t.Errorf("%s: marshal(ParseReport(report)) differs from the report", c.Name)
		}
	}
}

func TestRandomInputsRejected(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	v := &Verifier{}
	for i := 0; i < 2000; i++ {
		n := rng.IntN(2 * ReportSize)
		if i%4 == 0 {
			n = ReportSize
		}
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if i%8 == 0 && n >= 8 {
			binary.LittleEndian.PutUint32(data, 3)
			binary.LittleEndian.PutUint32(data[0x34:], 1)
		}
		if _, err := v.Verify(context.Background(), attest.Evidence{Data: data, Aux: data}, attest.Options{}); err == nil {
			t.Fatalf("Verify accepted %d random bytes", n)
		}
		_, _ = v.Inspect(data)
		_, _ = parseCertTable(data)
	}
}

func TestParseCertTable(t *testing.T) {
	table := marshalCertTable([]certTableEntry{{GUID: guidVCEK, Data: []byte("vcek")}, {GUID: guidASK, Data: []byte("ask")}})
	entries, err := parseCertTable(table)
	if err != nil {
		t.Fatalf("parseCertTable: %v", err)
	}
	if len(entries) != 2 || string(entries[0].Data) != "vcek" || entries[1].GUID != guidASK {
		t.Fatalf("parseCertTable = %+v, want the VCEK and ASK entries", entries)
	}

	tests := []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"offset wraps around", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[16:], 0xfffffff0)
			binary.LittleEndian.PutUint32(b[20:], 0x20)
			return b
		}},
		{"length past end", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[20:], 1<<20); return b }},
		{"offset inside header", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], 4); return b }},
		{"no terminator", func(b []byte) []byte { return b[:certTableEntrySize+10] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(append([]byte(nil), table...))
			if _, err := parseCertTable(b); !errors.Is(err, attest.ErrMalformed) {
				t.Errorf("parseCertTable error = %v, want a malformed error", err)
			}
		})
	}
}

func TestParseReportPolicyReservedBits(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	tests := []struct {
		name   string
		policy uint64
		kind   error
	}{
		{"bit 17 set", 0x30000, nil},
		{"every defined bit", 0x3ffffff, nil},
		{"bit 17 clear", 0x10000, attest.ErrMalformed},
		{"bit 26 set", 0x30000 | 1<<26, attest.ErrMalformed},
		{"bit 63 set", 0x30000 | 1<<63, attest.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := signedReport(t, e, func(r *Report) { r.Policy = tc.policy })
			_, err := ParseReport(data)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("ParseReport: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("ParseReport error = %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), "POLICY") {
				t.Errorf("ParseReport error %q does not name POLICY", err)
			}
			if !strings.Contains(err.Error(), strconv.FormatUint(tc.policy, 16)) {
				t.Errorf("ParseReport error %q does not show the policy value", err)
			}
		})
	}
}
