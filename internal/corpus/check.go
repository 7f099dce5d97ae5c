package corpus

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// Options returns the verification options a user passes for the case: its
// verification time and its collateral.
func (c Case) Options(t testing.TB) attest.Options {
	t.Helper()
	return attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
}

// SignatureInvalid reports whether expect.json states that the evidence
// signature does not verify.
func (c Case) SignatureInvalid() bool {
	return c.Expect.SignatureValid != nil && !*c.Expect.SignatureValid
}

// ChainInvalid reports whether expect.json states that the certificate
// chain does not verify.
func (c Case) ChainInvalid() bool {
	return c.Expect.ChainValid != nil && !*c.Expect.ChainValid
}

// ErrorText returns err's message, or "" for a nil error.
func ErrorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// CheckVerdicts evaluates ev under the default appraisal and compares the
// verdict, the reject reason and the error kind (see checkErrorKinds) with
// expect.json. When expect.json states verdict_if_debug_allowed, it
// evaluates ev again with debug allowed and compares that verdict too. A
// wrong default verdict stops the test. It returns the result of the
// default appraisal.
func CheckVerdicts(t *testing.T, c Case, ev attest.Evidence, vo attest.Options) *appraise.Result {
	t.Helper()
	exp := c.Expect
	res := appraise.Evaluate(context.Background(), ev, vo, appraise.Options{})
	if string(res.Verdict) != exp.DefaultVerdict {
		t.Fatalf("verdict = %s (error: %v), want %s", res.Verdict, res.Error, exp.DefaultVerdict)
	}
	if (exp.DefaultVerdict == "reject" || exp.RejectReason != "") && !MatchesReason(ErrorText(res.Error), exp.RejectReason) {
		t.Errorf("error %q does not state the reason %q", ErrorText(res.Error), exp.RejectReason)
	}
	checkErrorKinds(t, c, res)
	if want := exp.VerdictIfDebugAllowed; want != "" {
		debug := appraise.Evaluate(context.Background(), ev, vo, appraise.Options{AllowDebug: true})
		if string(debug.Verdict) != want {
			t.Errorf("verdict with debug allowed = %s (error: %v), want %s", debug.Verdict, debug.Error, want)
		}
	}
	return res
}

// checkErrorKinds checks that a rejection of evidence whose signature or
// chain expect.json states as invalid carries the signature or chain error
// kind.
func checkErrorKinds(t *testing.T, c Case, res *appraise.Result) {
	t.Helper()
	if c.SignatureInvalid() && !errors.Is(res.Error, attest.ErrSignature) {
		t.Errorf("error %v is not a signature error, but the signature is invalid", res.Error)
	}
	if c.ChainInvalid() && !errors.Is(res.Error, attest.ErrChain) {
		t.Errorf("error %v is not a chain error, but the chain is invalid", res.Error)
	}
}

// CheckClaims compares every claim that expect.json states, except the TCB
// (see CheckTCB), with the verified claims, and checks that the claims are
// not labelled emulated, because the corpus holds only real evidence. It
// stops the test when claims is nil.
func CheckClaims(t *testing.T, c Case, claims *attest.Claims) {
	t.Helper()
	if claims == nil {
		t.Fatal("no claims for verified evidence")
	}
	exp := c.Expect
	if claims.Emulated {
		t.Error("real evidence labelled emulated")
	}
	CheckDebug(t, c, claims)
	if exp.Nonce != nil && claims.Nonce.String() != *exp.Nonce {
		t.Errorf("nonce = %s, want %s", claims.Nonce, *exp.Nonce)
	}
	if exp.ReportData != "" && claims.ReportData.String() != exp.ReportData {
		t.Errorf("report data = %s, want %s", claims.ReportData, exp.ReportData)
	}

	if exp.Measurement != "" && claims.Measurement.String() != exp.Measurement {
		t.Errorf("measurement = %s, want %s", claims.Measurement, exp.Measurement)
	}
	for name, want := range exp.Measurements {
		if got := claims.Measurements[name].String(); got != want {
			t.Errorf("measurement %s = %s, want %s", name, got, want)
		}
	}
	if exp.MRSigner != "" && claims.Measurements["mrsigner"].String() != exp.MRSigner {
		t.Errorf("mrsigner = %s, want %s", claims.Measurements["mrsigner"], exp.MRSigner)
	}
	for i, want := range exp.RTMRs {
		name := "rtmr" + string(rune('0'+i))
		if got := claims.Measurements[name].String(); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}

	if exp.SigningKey != "" && claims.SigningKey != exp.SigningKey {
		t.Errorf("signing key = %s, want %s", claims.SigningKey, exp.SigningKey)
	}
	if exp.Product != "" && claims.Product != exp.Product {
		t.Errorf("product = %s, want %s", claims.Product, exp.Product)
	}
	if exp.QuoteVersion != 0 && claims.Attributes["quote_version"] != exp.QuoteVersion {
		t.Errorf("quote version = %v, want %d", claims.Attributes["quote_version"], exp.QuoteVersion)
	}
}

// CheckDebug compares the debug claim with expect.json, when it states one.
func CheckDebug(t *testing.T, c Case, claims *attest.Claims) {
	t.Helper()
	if c.Expect.Debug != nil && claims.Debug != *c.Expect.Debug {
		t.Errorf("debug = %v, want %v", claims.Debug, *c.Expect.Debug)
	}
}

// CheckTCB compares the TCB status and the advisory IDs with expect.json,
// when it states them. An empty advisory list and a nil one are equal.
func CheckTCB(t *testing.T, c Case, claims *attest.Claims) {
	t.Helper()
	exp := c.Expect
	if exp.TCBStatus != "" && claims.TCB.Status != exp.TCBStatus {
		t.Errorf("TCB status = %q, want %q", claims.TCB.Status, exp.TCBStatus)
	}
	if exp.AdvisoryIDs != nil && !slices.Equal(claims.TCB.AdvisoryIDs, exp.AdvisoryIDs) {
		t.Errorf("advisories = %v, want %v", claims.TCB.AdvisoryIDs, exp.AdvisoryIDs)
	}
}

// CheckNonceBinding verifies the case with its own nonce from expect.json
// as the expected nonce, which must succeed. When expect.json expects the
// case accepted, the default appraisal must accept it with that nonce too.
// Then it verifies the case with the first byte changed, the last byte
// changed and a nonce of another length. Each must fail with a binding
// error that names the nonce and still return the claims verified before
// the nonce check.
func CheckNonceBinding(t *testing.T, c Case, ev attest.Evidence) {
	t.Helper()
	if c.Expect.Nonce == nil {
		t.Fatal("expect.json states no nonce")
	}
	nonce, err := attest.ParseHex(*c.Expect.Nonce)
	if err != nil {
		t.Fatalf("invalid nonce %q in expect.json: %v", *c.Expect.Nonce, err)
	}
	vo := c.Options(t)
	vo.Nonce = nonce
	if _, err := attest.Verify(context.Background(), ev, vo); err != nil {
		t.Fatalf("with the expected nonce: %v, want no error", err)
	}
	if c.Expect.DefaultVerdict == "accept" {
		if res := appraise.Evaluate(context.Background(), ev, vo, appraise.Options{}); res.Verdict != appraise.Accept {
			t.Fatalf("with the expected nonce: verdict %s (error: %v), want accept", res.Verdict, res.Error)
		}
	}

	first := slices.Clone(nonce)
	first[0] ^= 0xff
	last := slices.Clone(nonce)
	last[len(last)-1] ^= 0xff
	changed := []struct {
		name  string
		nonce []byte
	}{
		{"first byte changed", first},
		{"last byte changed", last},
		{"another length", []byte("another nonce")},
	}
	for _, tc := range changed {
		vo.Nonce = tc.nonce
		claims, err := attest.Verify(context.Background(), ev, vo)
		if !errors.Is(err, attest.ErrBinding) {
			t.Errorf("nonce with %s: error %v, want a binding error", tc.name, err)
			continue
		}
		if !MatchesReason(err.Error(), "nonce") {
			t.Errorf("nonce with %s: error %q does not name the nonce", tc.name, err)
		}
		if claims == nil {
			t.Errorf("nonce with %s: no claims returned with the binding error", tc.name)
		}
	}
}

// CheckUnverified reports whether expect.json states the evidence
// signature or its certificate chain as invalid, and checks that the
// result of such evidence carries no claims, because nothing in it was
// proven.
func CheckUnverified(t *testing.T, c Case, res *appraise.Result) bool {
	t.Helper()
	if !c.SignatureInvalid() && !c.ChainInvalid() {
		return false
	}
	if res.Claims != nil {
		t.Errorf("claims returned for evidence whose signature or chain is invalid: %+v", res.Claims)
	}
	return true
}

// CheckNonceBindings runs CheckNonceBinding as a subtest for every case of
// tee that expect.json expects accepted and that states a nonce. The
// evidence format is detected, as the CLI does.
func CheckNonceBindings(t *testing.T, tee string) {
	t.Helper()
	for _, c := range Cases(t, tee) {
		if c.Expect.DefaultVerdict != "accept" || c.Expect.Nonce == nil {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			CheckNonceBinding(t, c, attest.Evidence{Data: c.EvidenceBytes(t)})
		})
	}
}
