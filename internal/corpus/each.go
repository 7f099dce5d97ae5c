package corpus

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// CheckEachCase runs a subtest for every case of tee. It evaluates the
// case's evidence, labelled with format, through CheckVerdicts. Unless
// CheckUnverified reports the evidence unverified, it requires claims and
// passes them to checkClaims, the claim checks of the TEE package.
func CheckEachCase(t *testing.T, tee, format string, checkClaims func(*testing.T, Case, *attest.Claims)) {
	t.Helper()
	for _, c := range Cases(t, tee) {
		t.Run(c.Name, func(t *testing.T) {
			ev := attest.Evidence{Format: format, Data: c.EvidenceBytes(t)}
			res := CheckVerdicts(t, c, ev, c.Options(t))
			if CheckUnverified(t, c, res) {
				return
			}
			if res.Claims == nil {
				t.Fatalf("no claims: %v", res.Error)
			}
			checkClaims(t, c, res.Claims)
		})
	}
}

// CheckDecoding runs a subtest for every case of tee with the decoding
// checks of a format whose length the encoding fixes, such as a COSE or
// CBOR token. attest.Detect must assign the evidence to v, and v must
// inspect it (see CheckInspect). v must reject every prefix of the
// evidence, and the evidence with one trailing byte as malformed.
func CheckDecoding(t *testing.T, tee string, v VerifyInspector) {
	t.Helper()
	for _, c := range Cases(t, tee) {
		t.Run(c.Name, func(t *testing.T) {
			CheckDetect(t, c, v.Name())
			CheckInspect(t, c, v)

			data := c.EvidenceBytes(t)
			CheckPrefixesRejected(t, c, v, data, len(data), 1)

			trailing := append(bytes.Clone(data), 0x00)
			_, err := v.Verify(context.Background(), attest.Evidence{Data: trailing}, c.Options(t))
			if !errors.Is(err, attest.ErrMalformed) {
				t.Errorf("%s: trailing byte: error %v, want malformed", c.Name, err)
			}
		})
	}
}

// CheckJSONPrefixes runs CheckPrefixesRejected as a subtest for every case
// of tee, whose evidence is a JSON document. It checks every
// step(len(evidence))-th prefix. The prefixes stop before trailing white
// space, because a prefix that drops only white space is the same JSON
// document.
func CheckJSONPrefixes(t *testing.T, tee string, v attest.Verifier, step func(size int) int) {
	t.Helper()
	for _, c := range Cases(t, tee) {
		t.Run(c.Name, func(t *testing.T) {
			data := c.EvidenceBytes(t)
			end := len(bytes.TrimRight(data, " \t\r\n"))
			CheckPrefixesRejected(t, c, v, data, end, step(len(data)))
		})
	}
}

// FirstAccepted returns the first case of tee, in name order, that
// expect.json expects accepted and for which match returns true. A nil
// match accepts every such case. It reports false when no case matches, so
// that the caller decides whether to skip or to fail.
func FirstAccepted(t testing.TB, tee string, match func(Case) bool) (Case, bool) {
	t.Helper()
	for _, c := range AcceptedCases(t, tee) {
		if match == nil || match(c) {
			return c, true
		}
	}
	return Case{}, false
}
