package nvgpu

import (
	"crypto/x509"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// A response produced after the verification time, as verify --online
// --at fetches for a past time, cannot show the status at that time: the
// check is not checked, unless the response revokes the certificate at or
// before that time. A response that does not verify still fails. A
// response from the future of the current time fails, because a clock is
// wrong.
func TestOCSPNewerThanVerificationTime(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	other := newTestGPU(t, testFWID(0xf2), nil)
	now := time.Now()
	newerGood := goodBetween(24*time.Hour, 48*time.Hour, false)
	newer := func(edit func(*ocsp.Response)) ocsp.Response {
		r := newerGood
		edit(&r)
		return r
	}
	revokedBefore := newer(func(r *ocsp.Response) {
		r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, testTime.Add(-2*time.Hour), ocsp.KeyCompromise
	})
	holdBefore := newer(func(r *ocsp.Response) {
		r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, testTime, ocsp.CertificateHold
	})
	revokedAfter := newer(func(r *ocsp.Response) {
		r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, testTime.Add(time.Hour), ocsp.Superseded
	})
	tampered := signOCSP(t, g.intermediate, g.root, nil, g.rootKey, newerGood)
	tampered[len(tampered)-1] ^= 0x01
	// A delegated responder certificate may be newer than the verification
	// time: this one is valid now, when it signs, and not at that time.
	responderNow, responderNowKey := newResponder(t, g.root, g.rootKey, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, now.Add(-time.Hour), now.Add(time.Hour))
	responderGone, responderGoneKey := newResponder(t, g.root, g.rootKey, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, now.Add(-3*time.Hour), now.Add(-2*time.Hour))
	future := ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(time.Hour), NextUpdate: now.Add(2 * time.Hour)}

	inter := func(tmpl ocsp.Response) []byte { return signOCSP(t, g.intermediate, g.root, nil, g.rootKey, tmpl) }
	newerDetail := []string{
		`the OCSP response inter.ocsp about the GPU intermediate CA "CN=Test GH100 Identity,O=Cloister test" (serial 2) is newer than the verification time 2025-06-01T12:00:00Z`,
		"its thisUpdate 2025-06-02T12:00:00Z is more than 5m0s later",
		"to check revocation at 2025-06-01T12:00:00Z, pass the OCSP responses that were current at that time",
		"--collateral nvidia-gpu=FILE",
	}
	cases := []ocspCase{
		{name: "good", files: map[string][]byte{"inter.ocsp": inter(newerGood)}, result: attest.CheckNotChecked,
			detail: append([]string{"gives the status at that later time (good)"}, newerDetail...)},
		{name: "unknown", files: map[string][]byte{"inter.ocsp": inter(newer(func(r *ocsp.Response) { r.Status = ocsp.Unknown }))},
			result: attest.CheckNotChecked, detail: append([]string{"(unknown)"}, newerDetail...)},
		{name: "revoked after the verification time", files: map[string][]byte{"inter.ocsp": inter(revokedAfter)},
			result: attest.CheckNotChecked, detail: []string{"(revoked since 2025-06-01T13:00:00Z, after the verification time)"}},
		{name: "thisUpdate just past clock skew", files: map[string][]byte{"inter.ocsp": inter(goodBetween(ocspClockSkew+time.Second, time.Hour, false))},
			result: attest.CheckNotChecked, detail: []string{"is newer than the verification time", "thisUpdate 2025-06-01T12:05:01Z"}},
		{name: "revoked before the verification time", files: map[string][]byte{"inter.ocsp": inter(revokedBefore)},
			result: attest.CheckFailed, kind: attest.ErrRevoked, detail: []string{"revoked since 2025-06-01T10:00:00Z", "reason keyCompromise"}},
		{name: "on hold since the verification time", files: map[string][]byte{"inter.ocsp": inter(holdBefore)},
			result: attest.CheckFailed, kind: attest.ErrRevoked, detail: []string{"reason certificateHold"}},
		{name: "revoked before, with a current good response", files: map[string][]byte{"inter.ocsp": inter(revokedBefore), "current.ocsp": inter(goodStatus)},
			result: attest.CheckFailed, kind: attest.ErrRevoked, detail: []string{"inter.ocsp"}},
		{name: "with a current good response", files: map[string][]byte{"inter.ocsp": inter(newerGood), "current.ocsp": inter(goodStatus)},
			result: attest.CheckPassed},
		{name: "with an expired response", files: map[string][]byte{"inter.ocsp": inter(newerGood), "old.ocsp": inter(goodBetween(-3*time.Hour, -time.Hour, false))},
			result: attest.CheckFailed, kind: attest.ErrCollateralExpired, detail: []string{"old.ocsp", "expired"}},
		{name: "tampered signature", files: map[string][]byte{"inter.ocsp": tampered},
			result: attest.CheckFailed, kind: attest.ErrSignature},
		{name: "wrong signer", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, other.rootKey, newerGood)},
			result: attest.CheckFailed, kind: attest.ErrSignature},
		{name: "forged revocation after the verification time", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, other.rootKey, revokedAfter)},
			result: attest.CheckFailed, kind: attest.ErrSignature},
		{name: "responder valid when it signed", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, responderNow, responderNowKey, newerGood)},
			result: attest.CheckNotChecked, detail: newerDetail},
		{name: "responder expired when it signed", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, responderGone, responderGoneKey, newerGood)},
			result: attest.CheckFailed, kind: attest.ErrSignature, detail: []string{"valid at its producedAt", "because it was produced after the verification time", "which excludes the time"}},
		{name: "from the future of the current time", files: map[string][]byte{"inter.ocsp": inter(future)},
			result: attest.CheckFailed, kind: attest.ErrCollateralExpired, detail: []string{"not yet valid", "after the current time", "clock"}},
		{name: "leaf only newer", files: map[string][]byte{"inter.ocsp": inter(goodStatus),
			"leaf.ocsp": signOCSP(t, g.leaf, g.intermediate, nil, g.interKey, newerGood)},
			result: attest.CheckPassed, detail: []string{"device leaf certificate needs none"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, g, nil) })
	}
}

// The timing rule, with the clock skew at each boundary.
func TestOCSPTimingOf(t *testing.T) {
	at := testTime
	now := testTime.Add(30 * 24 * time.Hour)
	single := func(thisUpdate, nextUpdate time.Time) collateral.OCSPSingleResponse {
		return collateral.OCSPSingleResponse{ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	}
	tests := []struct {
		name   string
		single collateral.OCSPSingleResponse
		at     time.Time
		want   ocspTiming
	}{
		{"current", single(at.Add(-time.Hour), at.Add(time.Hour)), at, ocspCurrent},
		{"nextUpdate at the verification time", single(at.Add(-time.Hour), at), at, ocspCurrent},
		{"thisUpdate at clock skew", single(at.Add(ocspClockSkew), at.Add(time.Hour)), at, ocspCurrent},
		{"thisUpdate past clock skew", single(at.Add(ocspClockSkew+time.Second), at.Add(time.Hour)), at, ocspNewer},
		{"expired", single(at.Add(-2*time.Hour), at.Add(-time.Second)), at, ocspExpired},
		{"no nextUpdate, within the default validity", single(at.Add(-collateral.OCSPValidityWithoutNextUpdate), time.Time{}), at, ocspCurrent},
		{"no nextUpdate, past the default validity", single(at.Add(-collateral.OCSPValidityWithoutNextUpdate-time.Second), time.Time{}), at, ocspExpired},
		{"fetched now for a past time", single(now.Add(-time.Minute), now.Add(time.Hour)), at, ocspNewer},
		{"thisUpdate at clock skew after now", single(now.Add(ocspClockSkew), now.Add(time.Hour)), at, ocspNewer},
		{"thisUpdate past clock skew after now", single(now.Add(ocspClockSkew+time.Second), now.Add(time.Hour)), at, ocspFuture},
		{"future of now at a future verification time", single(now.Add(time.Hour), now.Add(3*time.Hour)), now.Add(2 * time.Hour), ocspFuture},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ocspTimingOf(tt.single, tt.at, now); got != tt.want {
				t.Errorf("ocspTimingOf = %d, want %d", got, tt.want)
			}
		})
	}
}
