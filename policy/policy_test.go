package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

var measurement = attest.Hex(strings.Repeat("\xab", 48))

func goodClaims() *attest.Claims {
	return &attest.Claims{
		TEE:         attest.TEESNP,
		TrustAnchor: attest.TrustAnchorRef{Kind: attest.AnchorVendorRoot, Name: "ARK-Genoa"},
		Measurement: measurement,
		HostData:    attest.Hex(make([]byte, 32)),
		TCB:         attest.TCB{Status: attest.TCBUpToDate},
		Checks:      []attest.Check{{Name: "vcek-signature", Result: attest.CheckPassed, Required: true}},
	}
}

func goodRefs() map[string][]string {
	return map[string][]string{"snp.measurement": {strings.ToUpper(measurement.String())}}
}

func rulesOf(d *appraise.Decision) []string {
	var out []string
	for _, r := range d.Reasons {
		out = append(out, r.Rule)
	}
	return out
}

func TestDefaultAttestationPolicy(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	m := DefaultAttestation(attest.TEESNP)

	cases := []struct {
		name   string
		modify func(*attest.Claims)
		cfg    Config
		refs   map[string][]string
		want   string // the single expected rule, "" for acceptance
	}{
		{name: "accepted", want: ""},
		{name: "debug", modify: func(c *attest.Claims) { c.Debug = true }, want: "debug"},
		{name: "emulated", modify: func(c *attest.Claims) { c.Emulated = true }, want: "emulated"},
		{name: "emulated allowed", modify: func(c *attest.Claims) { c.Emulated = true }, cfg: Config{AllowEmulated: true}, want: ""},
		{name: "tcb out of date", modify: func(c *attest.Claims) { c.TCB.Status = attest.TCBOutOfDate }, want: "tcb-status"},
		{name: "tcb status accepted by config", modify: func(c *attest.Claims) { c.TCB.Status = attest.TCBOutOfDate },
			cfg: Config{TCBStatuses: []string{attest.TCBOutOfDate}}, want: ""},
		{name: "no matching tcb level", modify: func(c *attest.Claims) { c.TCB.Status = attest.TCBNoMatchingLevel }, want: "tcb-status"},
		{name: "no matching tcb level in config", modify: func(c *attest.Claims) { c.TCB.Status = attest.TCBNoMatchingLevel },
			cfg: Config{TCBStatuses: []string{attest.TCBNoMatchingLevel, attest.TCBUpToDate}}, want: "tcb-status"},
		{name: "required check skipped", modify: func(c *attest.Claims) { c.Skip("crl", true, "no CRL supplied") }, want: "required-check"},
		{name: "optional check skipped", modify: func(c *attest.Claims) { c.Skip("extra", false, "not needed") }, want: ""},
		{name: "test key", modify: func(c *attest.Claims) { c.TrustAnchor.TestKey = true }, want: "test-key"},
		{name: "measurement miss", modify: func(c *attest.Claims) { c.Measurement = attest.Hex(make([]byte, 48)) }, want: "measurement"},
		{name: "no reference values", refs: map[string][]string{}, want: "reference-value"},
		{name: "failed check", modify: func(c *attest.Claims) { c.Fail("ak-attributes", "the AK is not restricted") }, want: "failed-check"},
		{name: "other TEE", modify: func(c *attest.Claims) { c.TEE = attest.TEETDX }, want: "tee"},
		{name: "host data miss", refs: map[string][]string{"snp.measurement": {measurement.String()}, "snp.host_data": {"01"}}, want: "host-data"},
		{name: "named measurement miss", modify: func(c *attest.Claims) { c.SetMeasurement("id_key_digest", []byte{1}) },
			refs: map[string][]string{"snp.measurement": {measurement.String()}, "snp.id_key_digest": {"02"}}, want: "measurement"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims := goodClaims()
			if c.modify != nil {
				c.modify(claims)
			}
			refs := c.refs
			if refs == nil {
				refs = goodRefs()
			}
			d, err := e.Appraise(ctx, m, claims, c.cfg, refs)
			if err != nil {
				t.Fatal(err)
			}
			rules := rulesOf(d)
			if c.want == "" {
				if !d.Accepted {
					t.Errorf("rejected with %v: %+v", rules, d.Reasons)
				}
				return
			}
			if d.Accepted || len(rules) != 1 || rules[0] != c.want {
				t.Errorf("rules = %v, want [%s]", rules, c.want)
			}
			for _, r := range d.Reasons {
				if r.Message == "" || r.Claim == "" {
					t.Errorf("reason without message or claim: %+v", r)
				}
			}
		})
	}
}

// The policy's messages match the appraise package's for the rules both
// implement. The debug message differs only in its fix, because the
// service has no --allow-debug flag, so there only the text before the
// first "; " must agree. The NotDetermined message differs on purpose too,
// and TestUndeterminedTCBMessage checks the policy's.
func TestMessagesMatchAppraise(t *testing.T) {
	e := NewEngine()
	for _, tc := range []struct {
		status   string
		relaunch bool
	}{
		{attest.TCBOutOfDate, false},
		{attest.TCBOutOfDate, true},
		{attest.TCBOutOfDateConfigurationNeeded, true},
		{attest.TCBNoMatchingLevel, false},
	} {
		relaunch := tc.relaunch
		t.Run(fmt.Sprintf("%s relaunch %v", tc.status, relaunch), func(t *testing.T) {
			claims := goodClaims()
			claims.Debug = true
			claims.Emulated = true
			claims.TCB.Status = tc.status
			claims.TCB.AdvisoryIDs = []string{"INTEL-SA-00001"}
			claims.TCB.RelaunchAdvised = relaunch
			claims.Skip("crl", true, "no CRL supplied")
			claims.Fail("ak-attributes", "the AK is not restricted")

			d, err := e.Appraise(context.Background(), DefaultAttestation(attest.TEESNP), claims, Config{}, goodRefs())
			if err != nil {
				t.Fatal(err)
			}
			want := appraise.Appraise(claims, appraise.Options{})
			got := map[string]appraise.Reason{}
			for _, r := range d.Reasons {
				got[r.Rule] = r
			}
			for _, w := range want.Reasons {
				g, ok := got[w.Rule]
				if !ok {
					t.Errorf("policy lacks rule %s", w.Rule)
					continue
				}
				if w.Rule == "debug" {
					checkDebugMessage(t, g.Message, w.Message)
				} else if g.Message != w.Message {
					t.Errorf("rule %s message:\n got %s\nwant %s", w.Rule, g.Message, w.Message)
				}
				if g.Claim != w.Claim || g.Value != w.Value {
					t.Errorf("rule %s claim/value = %s/%s, want %s/%s", w.Rule, g.Claim, g.Value, w.Claim, w.Value)
				}
			}
			if fix := "relaunch the TD"; strings.Contains(got["tcb-status"].Message, fix) != relaunch {
				t.Errorf("tcb-status message %q; %q expected: %v", got["tcb-status"].Message, fix, relaunch)
			}
		})
	}
}

// NoMatchingTcbLevel is rejected with the appraise package's message and
// expected value even when the configuration lists it.
func TestNoMatchingTCBLevelListed(t *testing.T) {
	claims := goodClaims()
	claims.TCB.Status = attest.TCBNoMatchingLevel
	statuses := []string{attest.TCBNoMatchingLevel, attest.TCBOutOfDate}
	d, err := NewEngine().Appraise(context.Background(), DefaultAttestation(attest.TEESNP), claims, Config{TCBStatuses: statuses}, goodRefs())
	if err != nil {
		t.Fatal(err)
	}
	want := appraise.CheckTCBStatus(claims, appraise.Options{TCBStatuses: statuses})
	if len(d.Reasons) != 1 || len(want) != 1 {
		t.Fatalf("reasons %+v, appraise reasons %+v: want one each", d.Reasons, want)
	}
	if d.Reasons[0].Message != want[0].Message {
		t.Errorf("message:\n got %s\nwant %s", d.Reasons[0].Message, want[0].Message)
	}
	if d.Reasons[0].Expected != want[0].Expected {
		t.Errorf("expected %q, want %q", d.Reasons[0].Expected, want[0].Expected)
	}
}

// An undetermined TCB status is fixed by supplying collateral, not by a
// firmware update, and the service names the flags it has.
func TestUndeterminedTCBMessage(t *testing.T) {
	claims := goodClaims()
	claims.TCB.Status = attest.TCBNotDetermined
	d, err := NewEngine().Appraise(context.Background(), DefaultAttestation(attest.TEESNP), claims, Config{}, goodRefs())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Reasons) != 1 || d.Reasons[0].Rule != "tcb-status" {
		t.Fatalf("reasons %+v, expected one tcb-status reason", d.Reasons)
	}
	msg := d.Reasons[0].Message
	for _, want := range []string{"--collateral", "--tcb-status NotDetermined"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "firmware") {
		t.Errorf("message %q advises a firmware update for missing collateral", msg)
	}
}

// checkDebugMessage checks that the policy's debug message states the
// finding of the appraise package's message and names a fix that works for
// the service.
func checkDebugMessage(t *testing.T, got, appraiseMessage string) {
	t.Helper()
	finding, _, _ := strings.Cut(appraiseMessage, "; ")
	gotFinding, gotFix, _ := strings.Cut(got, "; ")
	if gotFinding != finding {
		t.Errorf("rule debug finding:\n got %s\nwant %s", gotFinding, finding)
	}
	for _, want := range []string{"rebuild it without debug", "`cloister policy set snp FILE`"} {
		if !strings.Contains(gotFix, want) {
			t.Errorf("rule debug fix %q lacks %q", gotFix, want)
		}
	}
	if strings.Contains(gotFix, "--allow-debug") {
		t.Errorf("rule debug fix %q names --allow-debug, which cloister serve does not have", gotFix)
	}
}

func TestDefaultResourcePolicy(t *testing.T) {
	e := NewEngine()
	res := Resource{Path: "default/key/1", Repository: "default", Type: "key", Tag: "1"}
	for status, want := range map[string]bool{"affirming": true, "warning": false, "contraindicated": false, "": false} {
		token := map[string]any{"submods": map[string]any{"cpu0": map[string]any{"ear.status": status}}}
		got, err := e.Allow(context.Background(), DefaultResource(), token, res, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("status %q: allow = %v, want %v", status, got, want)
		}
	}
}

func TestCustomResourcePolicy(t *testing.T) {
	m := Module{Name: "only-db", Text: `package custom
default allow := false
allow if {
	input.token.submods.cpu0["ear.status"] == "affirming"
	input.resource.repository == "db"
}`}
	e := NewEngine()
	token := map[string]any{"submods": map[string]any{"cpu0": map[string]any{"ear.status": "affirming"}}}
	for repo, want := range map[string]bool{"db": true, "web": false} {
		got, err := e.Allow(context.Background(), m, token, Resource{Repository: repo}, nil)
		if err != nil || got != want {
			t.Errorf("repository %s: allow = %v, %v; want %v", repo, got, err, want)
		}
	}
}

func TestInvalidPolicyRejected(t *testing.T) {
	e := NewEngine()
	for name, text := range map[string]string{
		"syntax":     "package p\nallow if {",
		"no package": "allow := true",
	} {
		if err := e.Check(context.Background(), Module{Name: name, Text: text}, "allow"); err == nil {
			t.Errorf("%s: policy accepted", name)
		}
	}
	// A deny that is not a set of reasons is an evaluation error, never an
	// acceptance.
	bad := Module{Name: "bad", Text: "package p\ndeny := 42"}
	if _, err := e.Appraise(context.Background(), bad, goodClaims(), Config{}, nil); err == nil {
		t.Error("a non-set deny was accepted")
	}
}

// BenchmarkAppraise measures the default attestation policy on claims it
// has appraised before (the decision is reused) and on new claims (Rego
// evaluates the policy).
func BenchmarkAppraise(b *testing.B) {
	ctx := context.Background()
	m := DefaultAttestation(attest.TEESNP)
	b.Run("reused", func(b *testing.B) {
		e := NewEngine()
		claims := goodClaims()
		for b.Loop() {
			if _, err := e.Appraise(ctx, m, claims, Config{}, goodRefs()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("evaluated", func(b *testing.B) {
		e := NewEngine()
		claims := goodClaims()
		var n uint64
		for b.Loop() {
			// A new value of a claim the policy reads makes a new key.
			n++
			claims.Checks[0].Detail = strconv.FormatUint(n, 10)
			if _, err := e.Appraise(ctx, m, claims, Config{}, goodRefs()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A 64-bit claim reaches the policy exactly. Through a float64 it would
// round to 18446744073709551616 and equal neither value below.
func TestLargeIntegerClaimExact(t *testing.T) {
	e := NewEngine()
	m := Module{Name: "exact", Text: `package exact

deny contains {"rule": "component", "claim": "tcb", "value": "", "expected": "", "message": "not exact"} if {
	input.claims.tcb.components[0].value != 18446744073709551615
}
`}
	for value, wantAccepted := range map[uint64]bool{
		18446744073709551615: true,
		18446744073709551614: false,
	} {
		claims := goodClaims()
		claims.TCB.Components = []attest.TCBComponent{{Name: "microcode", Value: value}}
		d, err := e.Appraise(context.Background(), m, claims, Config{}, nil)
		if err != nil {
			t.Fatalf("value %d: %v", value, err)
		}
		if d.Accepted != wantAccepted {
			t.Errorf("value %d: accepted = %v, want %v", value, d.Accepted, wantAccepted)
		}
	}
}

// The precomputed digest of empty data is the digest of its JSON encoding,
// as prepareEntry computes it for other data.
func TestEmptyDataDigest(t *testing.T) {
	raw, err := json.Marshal(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if want := "json:" + hex.EncodeToString(sum[:]); emptyDataDigest != want {
		t.Errorf("emptyDataDigest = %q, want %q", emptyDataDigest, want)
	}
}

func TestAppraiseJSONMatchesAppraise(t *testing.T) {
	e := NewEngine()
	ctx := context.Background()
	m := DefaultAttestation(attest.TEESNP)
	claims := goodClaims()
	claims.Debug = true

	want, err := e.Appraise(ctx, m, claims, Config{}, goodRefs())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.AppraiseJSON(ctx, m, raw, Config{}, goodRefs())
	if err != nil {
		t.Fatal(err)
	}
	if got.Accepted || !slices.Equal(rulesOf(got), rulesOf(want)) {
		t.Errorf("AppraiseJSON rules = %v (accepted %v), Appraise rules = %v", rulesOf(got), got.Accepted, rulesOf(want))
	}
}

func TestAppraiseJSONInvalidRejected(t *testing.T) {
	e := NewEngine()
	for name, raw := range map[string]string{
		"truncated": `{"tee":"snp"`,
		"empty":     ``,
		"not JSON":  `tee=snp`,
		"null":      `null`,
		"an array":  `[{"tee":"snp"}]`,
		// Data after the object must not reach the input, where a second
		// "config" member could override the service's switches.
		"trailing object": `{"tee":"snp"},"config":{"allow_emulated":true}`,
		"two objects":     `{"tee":"snp"} {"tee":"tdx"}`,
	} {
		if _, err := e.AppraiseJSON(context.Background(), DefaultAttestation(attest.TEESNP), []byte(raw), Config{}, goodRefs()); err == nil {
			t.Errorf("%s: claims accepted", name)
		}
	}
}

// Every GPU of multi-GPU evidence is compared with the one set of NVIDIA
// reference values, and the prefix is not stripped for other TEEs.
func TestDefaultPolicyEveryGPUMeasurement(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	gpuClaims := func(second string) *attest.Claims {
		c := goodClaims()
		c.TEE = attest.TEENVGPU
		c.SetMeasurement("block3", []byte{0xaa})
		c.SetMeasurement("gpu1/block3", mustHex(t, second))
		return c
	}
	refs := map[string][]string{"nvidia-gpu.measurement": {measurement.String()}, "nvidia-gpu.block3": {"aa"}}

	d, err := e.Appraise(ctx, DefaultAttestation(attest.TEENVGPU), gpuClaims("aa"), Config{}, refs)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Accepted {
		t.Errorf("two GPUs matching the reference value: rejected with %+v", d.Reasons)
	}

	d, err = e.Appraise(ctx, DefaultAttestation(attest.TEENVGPU), gpuClaims("bb"), Config{}, refs)
	if err != nil {
		t.Fatal(err)
	}
	if d.Accepted || len(d.Reasons) != 1 || d.Reasons[0].Claim != "measurements.gpu1/block3" ||
		!strings.Contains(d.Reasons[0].Message, "reference values nvidia-gpu.block3") {
		t.Errorf("second GPU off the reference value: decision %+v, want one reason naming measurements.gpu1/block3", d)
	}

	snp := goodClaims()
	snp.SetMeasurement("gpu1/block3", []byte{0xbb})
	d, err = e.Appraise(ctx, DefaultAttestation(attest.TEESNP), snp, Config{}, map[string][]string{"snp.measurement": {measurement.String()}, "snp.block3": {"aa"}})
	if err != nil {
		t.Fatal(err)
	}
	// Under another TEE, gpu1/block3 is not block3, so snp.block3 names a
	// measurement the claims lack.
	if d.Accepted || len(d.Reasons) != 1 || d.Reasons[0].Rule != "reference-value" || d.Reasons[0].Claim != "measurements.block3" {
		t.Errorf("a gpu1/ name under another TEE: decision %+v, want one reference-value reason on measurements.block3", d)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := attest.ParseHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
