package corpus

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// CheckDetect checks that attest.Detect assigns the case's evidence to the
// verifier named name.
func CheckDetect(t *testing.T, c Case, name string) {
	t.Helper()
	v, err := attest.Detect(c.EvidenceBytes(t))
	if err != nil {
		t.Errorf("%s: Detect: %v, want the %s verifier", c.Name, err, name)
		return
	}
	if v.Name() != name {
		t.Errorf("%s: detected as %s, want %s", c.Name, v.Name(), name)
	}
}

// CheckPrefixesRejected calls v.Detect and v.Verify on every step-th
// prefix of data shorter than end, with the case's options. Verify must
// reject each prefix, and neither call may panic.
func CheckPrefixesRejected(t *testing.T, c Case, v attest.Verifier, data []byte, end, step int) {
	t.Helper()
	opts := c.Options(t)
	for n := 0; n < end; n += step {
		v.Detect(data[:n])
		if claims, err := v.Verify(context.Background(), attest.Evidence{Data: data[:n]}, opts); err == nil {
			t.Fatalf("%s: prefix of %d bytes verified: %+v", c.Name, n, claims)
		}
	}
}

// CheckConcurrentVerify verifies each case's evidence from eight
// goroutines at once with the case's options, which must all succeed. Run
// it with -race to find data races in shared caches.
func CheckConcurrentVerify(t *testing.T, v attest.Verifier, cases []Case) {
	t.Helper()
	for _, c := range cases {
		data, opts := c.EvidenceBytes(t), c.Options(t)
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				_, err := v.Verify(context.Background(), attest.Evidence{Data: data}, opts)
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Errorf("%s: %v", c.Name, err)
			}
		}
	}
}

// VerifyInspector is a verifier that can also decode evidence without
// verifying it.
type VerifyInspector interface {
	attest.Verifier
	attest.Inspector
}

// CheckRandomInputs verifies 2000 random inputs of up to 4 KiB, which must
// be rejected. Then it changes one to eight random bytes of each case's
// evidence, mutations times per case, and verifies and inspects the result,
// which must not panic. The inputs come from r, so a seed repeats a run.
func CheckRandomInputs(t *testing.T, v VerifyInspector, cases []Case, r *rand.Rand, mutations int) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		data := make([]byte, r.IntN(4096))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		if _, err := v.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{}); err == nil {
			t.Fatalf("random input %d of %d bytes verified", i, len(data))
		}
	}
	for _, c := range cases {
		orig := c.EvidenceBytes(t)
		opts := c.Options(t)
		for i := 0; i < mutations; i++ {
			data := append([]byte{}, orig...)
			for k := 0; k < 1+r.IntN(8); k++ {
				data[r.IntN(len(data))] = byte(r.Uint32())
			}
			_, _ = v.Verify(context.Background(), attest.Evidence{Data: data}, opts)
			_, _ = v.Inspect(data)
		}
	}
}

// CheckInspect decodes the case's evidence with v without verifying it,
// which must succeed, and then every prefix of it, which must not panic.
func CheckInspect(t *testing.T, c Case, v attest.Inspector) {
	t.Helper()
	data := c.EvidenceBytes(t)
	fields, err := v.Inspect(data)
	if err != nil || fields == nil {
		t.Errorf("%s: Inspect = %v, %v; want the decoded fields", c.Name, fields, err)
	}
	for n := range len(data) {
		_, _ = v.Inspect(data[:n])
	}
}

// PresentCases returns the cases of each named TEE that has a directory in
// the corpus, skipping the TEEs that have none, so that a test over other
// TEEs' evidence runs on a partial corpus.
func PresentCases(t testing.TB, tees ...string) []Case {
	t.Helper()
	var cases []Case
	for _, tee := range tees {
		if _, err := os.Stat(filepath.Join(Dir(t), tee)); err != nil {
			continue
		}
		cases = append(cases, Cases(t, tee)...)
	}
	return cases
}

// AcceptedCases returns the cases of tee that expect.json expects accepted
// under the default appraisal.
func AcceptedCases(t testing.TB, tee string) []Case {
	t.Helper()
	var accepted []Case
	for _, c := range Cases(t, tee) {
		if c.Expect.DefaultVerdict == "accept" {
			accepted = append(accepted, c)
		}
	}
	return accepted
}
