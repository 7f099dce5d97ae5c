package ear

import (
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// signRemembered returns a signer that remembers what it issues, one token
// it issued and the time of issue.
func signRemembered(t *testing.T) (*Signer, string, time.Time) {
	t.Helper()
	s := newTestSigner(t)
	s.Issued = &Issued{}
	now := time.Now()
	tok, err := s.Sign(sampleResult(), now)
	if err != nil {
		t.Fatal(err)
	}
	return s, tok, now
}

// fullResult returns a claim set with every optional part of an appraisal
// filled in, beside an appraisal with only ear.status and one with an
// empty reason list.
func fullResult() *Result {
	r := sampleResult()
	tv := TrustVectorFor([]appraise.Reason{{Rule: "debug"}})
	r.Submods["cpu0"].KeyClaims = &KeyClaims{TEE: "snp", Emulated: true, Measurement: "ab", ReportData: "cd", HostData: "ef", TCBStatus: "UpToDate", Debug: true}
	r.Submods["cpu0"].Digests = &Digests{Evidence: "01", Collateral: "02", Policy: "03"}
	r.Submods["cpu0"].Reasons = []appraise.Reason{{Rule: "debug", Claim: "debug", Value: "true", Expected: "false", Message: "the TEE runs in debug mode <&>"}}
	r.Submods["gpu0"] = &Appraisal{Status: tv.Status(), TrustVector: &tv, Reasons: []appraise.Reason{}}
	r.Submods["gpu1"] = &Appraisal{Status: StatusNone}
	return r
}

// A remembered token verifies to exactly what the full verification gives,
// for claim sets with every optional part, with none, and with a string
// that is not valid UTF-8, which the JSON encoding replaces.
func TestIssuedMatchesFullVerification(t *testing.T) {
	invalidUTF8 := fullResult()
	invalidUTF8.Submods["cpu0"].Reasons[0].Message = "bad \xff byte"
	statusOnly := sampleResult()
	statusOnly.Nonce = ""
	statusOnly.Submods = map[string]*Appraisal{"cpu0": {Status: StatusAffirming}}

	tests := []struct {
		name       string
		result     *Result
		remembered bool
	}{
		{"sample", sampleResult(), true},
		{"every optional part", fullResult(), true},
		{"no optional parts", statusOnly, true},
		{"invalid UTF-8", invalidUTF8, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSigner(t)
			s.Issuer = "cloister-test"
			s.Issued = &Issued{}
			now := time.Now()
			tok, err := s.Sign(tt.result, now)
			if err != nil {
				t.Fatal(err)
			}
			issued, ok := s.Issued.lookup(tok)
			if !ok {
				t.Fatal("the signed token is not remembered")
			}
			if got := issued.frame != nil; got != tt.remembered {
				t.Errorf("claim set remembered = %v, want %v", got, tt.remembered)
			}

			cached := &Verifier{Keys: s.JWKS(), Issuer: "cloister-test", Issued: s.Issued}
			full := &Verifier{Keys: s.JWKS(), Issuer: "cloister-test"}
			got, err := cached.Verify(tok, now)
			if err != nil {
				t.Fatal(err)
			}
			want, err := full.Verify(tok, now)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("remembered token verifies to\n%+v\nfull verification to\n%+v", got, want)
			}
			checkVerifyText(t, cached, tok, now, want)
			checkVerifyText(t, full, tok, now, want)

			// A caller may change what one verification returns without
			// changing what the next one returns.
			for _, a := range got.Result.Submods {
				if a != nil && a.KeyClaims != nil {
					a.KeyClaims.TEE = "changed"
					a.Reasons[0].Rule = "changed"
				}
			}
			again, err := cached.Verify(tok, now)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, again) {
				t.Errorf("a change to one verification's result reached the next:\n%+v", again)
			}
		})
	}
}

// checkVerifyText checks that v.VerifyText gives want's claim set without
// annotated evidence, and text that decodes to want's claim map.
func checkVerifyText(t *testing.T, v *Verifier, tok string, now time.Time, want *Verified) {
	t.Helper()
	res, text, err := v.VerifyText(tok, now)
	if err != nil {
		t.Fatalf("VerifyText: %v", err)
	}
	wantResult, err := want.Result.withEvidence(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, wantResult) {
		t.Errorf("VerifyText claims\n%+v\nwant\n%+v", res, wantResult)
	}
	claims, err := jsonvalue.DecodeObject(text)
	if err != nil {
		t.Fatalf("VerifyText text: %v", err)
	}
	if !reflect.DeepEqual(claims, want.Claims) {
		t.Errorf("VerifyText text decodes to\n%v\nwant\n%v", claims, want.Claims)
	}
}

// The claims of a remembered token are checked as those of any other.
func TestIssuedClaimsStillChecked(t *testing.T) {
	s, tok, now := signRemembered(t)
	other := newTestSigner(t)

	tests := []struct {
		name   string
		v      *Verifier
		token  string
		at     time.Time
		reason string
	}{
		{"expired", &Verifier{Keys: s.JWKS(), Issued: s.Issued}, tok, now.Add(DefaultLifetime + Leeway + time.Second), "exp"},
		{"issued in the future", &Verifier{Keys: s.JWKS(), Issued: s.Issued}, tok, now.Add(-Leeway - time.Minute), "iat"},
		{"other issuer expected", &Verifier{Keys: s.JWKS(), Issuer: "someone-else", Issued: s.Issued}, tok, now, "iss"},
		// The signing key is no longer trusted: the token takes the full
		// verification, which names the unknown key.
		{"key no longer trusted", &Verifier{Keys: other.JWKS(), Issued: s.Issued}, tok, now, "unknown key"},
		// One changed character makes another token, which is verified
		// in full and fails.
		{"altered token", &Verifier{Keys: s.JWKS(), Issued: s.Issued}, alterSignature(tok), now, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.Verify(tt.token, tt.at)
			if err == nil {
				t.Fatal("token accepted")
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not mention %q", err, tt.reason)
			}
			_, _, err = tt.v.VerifyText(tt.token, tt.at)
			if err == nil {
				t.Fatal("VerifyText accepted the token")
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("VerifyText error %q does not mention %q", err, tt.reason)
			}
		})
	}
}

// alterSignature changes the first character of the token's signature.
func alterSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 1
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// signTokens signs n sample results with s at now and returns the tokens.
func signTokens(t *testing.T, s *Signer, n int, now time.Time) []string {
	t.Helper()
	tokens := make([]string, n)
	for i := range tokens {
		tok, err := s.Sign(sampleResult(), now)
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok
	}
	return tokens
}

// The cache keeps at most Capacity tokens, dropping the oldest, and drops
// expired tokens as new ones arrive; a dropped token still verifies in
// full.
func TestIssuedBounded(t *testing.T) {
	s := newTestSigner(t)
	s.Issued = &Issued{Capacity: 3}
	now := time.Now()
	tokens := signTokens(t, s, 5, now)
	checkHeld(t, s.Issued, 3, tokens[0], tokens[4])
	v := &Verifier{Keys: s.JWKS(), Issued: s.Issued}
	if _, err := v.Verify(tokens[0], now); err != nil {
		t.Errorf("dropped token rejected: %v", err)
	}

	later := now.Add(DefaultLifetime + Leeway + time.Second)
	if _, err := s.Sign(sampleResult(), later); err != nil {
		t.Fatal(err)
	}
	if n := s.Issued.Len(); n != 1 {
		t.Errorf("Len = %d after the others expired, want 1", n)
	}
}

// A Verifier whose key set lacks the signer's key never uses the cache,
// even for a token the cache holds.
func TestIssuedNeedsTrustedKey(t *testing.T) {
	s, tok, now := signRemembered(t)
	v := &Verifier{Keys: jose.JSONWebKeySet{}, Issued: s.Issued}
	if _, err := v.Verify(tok, now); err == nil {
		t.Fatal("token accepted by a verifier with no keys")
	}
}

// Every string field of a claim set, when it is not valid UTF-8, keeps the
// claim set out of the frame, so that a field added later cannot skip the
// check in frameOf. Annotated evidence is not part of the frame.
func TestFrameChecksEveryString(t *testing.T) {
	r := fullResult()
	var fields []reflect.Value
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			fields = append(fields, v)
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).Name != "AnnotatedEvidence" {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				walk(v.MapIndex(k))
			}
		}
	}
	walk(reflect.ValueOf(r))
	if len(fields) < 20 {
		t.Fatalf("found %d string fields in the claim set, expected at least 20", len(fields))
	}

	for _, f := range fields {
		saved := f.String()
		f.SetString("bad \xff")
		if frameOf(r) != nil {
			t.Errorf("frameOf kept a claim set whose field (now %q, was %q) is not valid UTF-8", f.String(), saved)
		}
		f.SetString(saved)
	}
	if frameOf(r) == nil {
		t.Error("frameOf rejected the valid claim set")
	}
}

func TestIssuedBoundedByBytes(t *testing.T) {
	s := newTestSigner(t)
	s.Issued = &Issued{}
	now := time.Now()
	first, err := s.Sign(sampleResult(), now)
	if err != nil {
		t.Fatal(err)
	}
	size := s.Issued.tokens.Bytes()
	if size <= len(first) {
		t.Fatalf("bytes = %d after one token of %d bytes, want the token and its payload", size, len(first))
	}

	// Room for two tokens of this size: the third drops the first.
	s.Issued = &Issued{MaxBytes: 2*size + size/2}
	tokens := signTokens(t, s, 3, now)
	checkHeld(t, s.Issued, 2, tokens[0], tokens[2])

	// A token larger than the bound is not held and drops nothing.
	s.Issued.MaxBytes = size - 1
	if _, err := s.Sign(sampleResult(), now); err != nil {
		t.Fatal(err)
	}
	if n := s.Issued.Len(); n != 2 {
		t.Errorf("Len = %d after a token larger than MaxBytes, want 2", n)
	}
}

// checkHeld checks that c holds wantLen tokens, newest among them but
// not oldest.
func checkHeld(t *testing.T, c *Issued, wantLen int, oldest, newest string) {
	t.Helper()
	if n := c.Len(); n != wantLen {
		t.Errorf("Len = %d, want %d", n, wantLen)
	}
	if _, ok := c.lookup(oldest); ok {
		t.Error("the oldest token is still held")
	}
	if _, ok := c.lookup(newest); !ok {
		t.Error("the newest token is not held")
	}
}

// A Lifetime under a second gives exp equal to iat. Full verification
// rejects such a token, and so must the path for remembered tokens, in
// Verify and in VerifyText.
func TestIssuedRejectsExpNotAfterIat(t *testing.T) {
	s := newTestSigner(t)
	s.Issued = &Issued{}
	s.Lifetime = time.Millisecond
	now := time.Unix(1_700_000_000, 0)
	tok, err := s.Sign(sampleResult(), now)
	if err != nil {
		t.Fatal(err)
	}
	if issued, ok := s.Issued.lookup(tok); !ok || issued.frame == nil {
		t.Fatal("the signed token's claim set is not remembered")
	}

	const want = "is not after its iat"
	for _, v := range []*Verifier{{Keys: s.JWKS()}, {Keys: s.JWKS(), Issued: s.Issued}} {
		remembered := v.Issued != nil
		if _, err := v.Verify(tok, now); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Verify (remembered %v) error = %v, want one containing %q", remembered, err, want)
		}
		if _, _, err := v.VerifyText(tok, now); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("VerifyText (remembered %v) error = %v, want one containing %q", remembered, err, want)
		}
	}
}
