package composite

import (
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// FuzzVerify checks that no input makes Detect or Verify panic and that
// Verify accepts only inputs it can parse.
func FuzzVerify(f *testing.F) {
	g := acceptedGPUCases(f)[0]
	e := emulator(f, false)
	f.Add(build(f, cpuReport(f, e, g.nonce), g.report))
	f.Add([]byte(`{"cpu":{"evidence":"AA=="},"gpus":["00",{}]}`))
	f.Add([]byte(`{"cpu":{},"gpus":null}`))
	opts := options(e, g)
	v := &Verifier{}

	f.Fuzz(func(t *testing.T, data []byte) {
		v.Detect(data)
		if _, err := v.Verify(t.Context(), attest.Evidence{Data: data}, opts); err == nil {
			if _, perr := Parse(data); perr != nil {
				t.Errorf("Verify accepted input that Parse rejects: %v", perr)
			}
		}
	})
}
