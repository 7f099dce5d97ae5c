package nvgpu

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/cloister-dev/cloister/attest"
)

// rimMismatch is an active golden measurement that the report does not
// meet.
type rimMismatch struct {
	component string
	rim       *loadedRIM
	golden    GoldenMeasurement
	// reported is the report's block value, or nil when the report has no
	// block for the index.
	reported []byte
}

// rimComparison is the outcome for one GPU.
type rimComparison struct {
	rims     gpuRIMs
	compared int
	// comparedBy counts the compared measurements per component
	// (componentDriver, componentVBIOS).
	comparedBy map[string]int
	mismatches []rimMismatch
}

// activeGolden pairs an active golden measurement with its RIM.
type activeGolden struct {
	component string
	rim       *loadedRIM
	golden    GoldenMeasurement
}

// activeMeasurements merges the active measurements of the driver and
// VBIOS RIMs. Both RIMs activating the same index is an error, as in
// NVIDIA's local GPU verifier, because the two sets of golden values would
// contradict each other.
func activeMeasurements(sel gpuRIMs) ([]activeGolden, error) {
	var out []activeGolden
	byIndex := map[int]activeGolden{}
	for _, part := range sel.parts() {
		if part.rim == nil {
			continue
		}
		for _, g := range part.rim.Measurements {
			if !g.Active {
				continue
			}
			if other, ok := byIndex[g.Index]; ok {
				return nil, attest.Errorf(attest.ErrMalformed, "RIM "+part.rim.source,
					"the %s RIM %s and the %s RIM %s both have an active measurement at index %d",
					other.component, other.rim.source, part.component, part.rim.source, g.Index).
					WithFix("pass the driver and VBIOS RIMs that NVIDIA publishes for the versions this GPU runs")
			}
			a := activeGolden{component: part.component, rim: part.rim, golden: g}
			byIndex[g.Index] = a
			out = append(out, a)
		}
	}
	return out, nil
}

// compareRIMs compares every active golden measurement with the report's
// block of index+1, because a RIM counts indexes from 0 and SPDM from 1. A
// block matches when it has the golden size and equals one alternative.
//
// NOTE: NVIDIA's local GPU verifier means to skip index 35 when the opaque
// data reports NVDEC0 as disabled (0x55). Its test compares the raw bytes
// with an enum member, which is never equal, so it compares index 35
// always, and so does this function, which keeps the stricter behaviour.
func compareRIMs(report *Report, sel gpuRIMs) (rimComparison, error) {
	out := rimComparison{rims: sel, comparedBy: map[string]int{}}
	active, err := activeMeasurements(sel)
	if err != nil {
		return out, err
	}
	blocks := map[int][]byte{}
	for _, b := range report.Response.Blocks {
		blocks[int(b.Index)] = b.Value
	}
	for _, a := range active {
		out.compared++
		out.comparedBy[a.component]++
		value, ok := blocks[a.golden.Index+1]
		if ok && goldenMatches(a.golden, value) {
			continue
		}
		out.mismatches = append(out.mismatches, rimMismatch{component: a.component, rim: a.rim, golden: a.golden, reported: value})
	}
	return out, nil
}

func goldenMatches(g GoldenMeasurement, value []byte) bool {
	if len(value) != g.Size {
		return false
	}
	for _, v := range g.Values {
		if bytes.Equal(v, value) {
			return true
		}
	}
	return false
}

// describe states one mismatch: the RIM index, the SPDM block, the value
// seen and the values the RIM allows.
func (m rimMismatch) describe() string {
	reported := "no block"
	if m.reported != nil {
		reported = attest.Hex(m.reported).String()
	}
	return fmt.Sprintf("measurement index %d (SPDM block %d, %s) of the %s RIM %s for version %s: report %s, expected %s",
		m.golden.Index, m.golden.Index+1, m.golden.Name, m.component, m.rim.source, m.rim.Version, reported, m.expected())
}

func (m rimMismatch) expected() string {
	values := make([]string, len(m.golden.Values))
	for i, v := range m.golden.Values {
		values[i] = attest.Hex(v).String()
	}
	return strings.Join(values, " or ")
}

// mismatchError turns the first mismatch of a GPU into the error that
// rejects the evidence, with the count of the others.
func mismatchError(m rimMismatch, total int) error {
	reason := fmt.Sprintf("measurement index %d (%s) differs from NVIDIA's signed %s RIM %s for version %s",
		m.golden.Index, m.golden.Name, m.component, m.rim.source, m.rim.Version)
	if total > 1 {
		reason += fmt.Sprintf(", and %d more indexes differ", total-1)
	}
	reported := "no block"
	if m.reported != nil {
		reported = attest.Hex(m.reported).String()
	}
	return attest.Errorf(attest.ErrAppraisal, fmt.Sprintf("MeasurementRecord block %d", m.golden.Index+1), "%s", reason).
		WithValues(reported, m.expected()).
		WithFix("the GPU does not run the " + m.component + " that NVIDIA signed for this version: do not trust it, reinstall the release from NVIDIA and collect a new report")
}
