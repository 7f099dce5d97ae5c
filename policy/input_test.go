package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// denyModule returns an attestation policy whose deny rule adds one reason
// with value when condition holds.
func denyModule(name, value, condition string) Module {
	return Module{Name: name, Text: fmt.Sprintf(`package %s

deny contains {"rule": %q, "claim": "c", "value": sprintf("%%v", [%s]), "expected": "", "message": "m"} if {
	%s
}
`, strings.ReplaceAll(name, "-", "_"), name, value, condition)}
}

// inputModules are attestation policies that read the claims and the
// configuration in every way a module can: the default policies, constant
// paths to claims the default policy does not read, the whole claims, and
// iteration over them.
func inputModules() []Module {
	return []Module{
		DefaultAttestation(attest.TEESNP),
		DefaultAttestation(attest.TEETDX),
		denyModule("report-data", "input.claims.report_data", `input.claims.report_data != "00"`),
		denyModule("nonce-absent", `"absent"`, `not input.claims.nonce`),
		denyModule("named-measurement", "input.claims.measurements.rtmr1", `input.claims.measurements.rtmr1 != "01"`),
		denyModule("component", "input.claims.tcb.components[0].value", `input.claims.tcb.components[0].value != 18446744073709551615`),
		denyModule("whole-tcb", "input.claims.tcb", `count(input.claims.tcb) != 2`),
		denyModule("verified-at", "input.claims.verified_at", `input.claims.verified_at`),
		denyModule("chain-subject", "input.claims.chain[_].subject", `some cert in input.claims.chain; cert.subject != ""`),
		denyModule("quoted-name", `input.claims["odd\"name"]`, `input.claims["odd\"name"] != true`),
		denyModule("object-get", `object.get(input.claims, "report_data", "none")`, `object.get(input.claims, "report_data", "none") != "00"`),
		denyModule("member-count", "count(input.claims)", `count(input.claims) > 3`),
		denyModule("walk", "n", `n := count([p | walk(input, [p, _])]); n > 0`),
		denyModule("every-member", "k", `some k, v in input.claims; v == "snp"`),
		denyModule("config", "input.config", `input.config.allow_emulated; count(object.get(input.config, "tcb_statuses", [])) > 0`),
		denyModule("config-statuses", "input.config.tcb_statuses", `input.config.tcb_statuses[_] == "OutOfDate"`),
		denyModule("other-member", "input.other.x", `not input.other.x`),
	}
}

// inputClaims are claims JSON texts for the modules above: encoded
// claims, claims of the corpus, and texts that encoding/json decodes in
// ways a naive reader would not (duplicate and escaped member names,
// spacing, members that are not objects).
func inputClaims(t *testing.T) map[string][]byte {
	encode := func(modify func(*attest.Claims)) []byte {
		c := goodClaims()
		modify(c)
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	texts := map[string][]byte{
		"good":         encode(func(*attest.Claims) {}),
		"report data":  encode(func(c *attest.Claims) { c.ReportData = attest.Hex{0} }),
		"nonce":        encode(func(c *attest.Claims) { c.Nonce = attest.Hex{1, 2} }),
		"measurements": encode(func(c *attest.Claims) { c.SetMeasurement("rtmr1", []byte{1}) }),
		"component": encode(func(c *attest.Claims) {
			c.TCB.Components = []attest.TCBComponent{{Name: "microcode", Value: 18446744073709551615}}
		}),
		"out of date": encode(func(c *attest.Claims) {
			c.TCB.Status = attest.TCBOutOfDate
			c.TCB.AdvisoryIDs = []string{"INTEL-SA-00001"}
		}),
		"debug and emulated": encode(func(c *attest.Claims) { c.Debug, c.Emulated = true, true }),
		"tdx":                encode(func(c *attest.Claims) { c.TEE = attest.TEETDX }),
		"checks": encode(func(c *attest.Claims) {
			c.Skip("crl", true, "no CRL supplied")
			c.Fail("ak-attributes", "the AK is not restricted")
		}),
		"duplicate names":  []byte(`{"tee":"tdx","tee":"snp","report_data":"01","report_data":"00","tcb":{"status":"Revoked","status":"UpToDate"}}`),
		"escaped names":    []byte(`{"\u0074ee":"snp","report\u005fdata":"00","odd\"name":true,"measurement":"` + measurement.String() + `"}`),
		"spacing":          []byte(" {\n\t\"tee\" : \"snp\" ,\n \"tcb\" : { \"status\" : \"UpToDate\" , \"advisory_ids\" : [ ] } } "),
		"tcb not object":   []byte(`{"tee":"snp","tcb":"UpToDate"}`),
		"tcb null":         []byte(`{"tee":"snp","tcb":null}`),
		"tcb array":        []byte(`{"tee":"snp","tcb":[{"status":"Revoked"}]}`),
		"brackets in text": []byte(`{"x":"}{\"]\\","tee":"snp","chain":[{"subject":"CN=}"}]}`),
		"invalid name":     []byte("{\"t\xffe\":\"snp\",\"tee\":\"sgx\"}"),
		"empty":            []byte(`{}`),
	}
	for i, raw := range corpusClaims(t) {
		texts[fmt.Sprintf("corpus %d", i)] = raw
	}
	return texts
}

// referenceDecision evaluates m over claimsJSON as every appraisal did
// before the claims were read in place: the whole claims decoded with
// jsonvalue.DecodeObject, the config through JSON, and no decision cache.
func referenceDecision(t *testing.T, queries map[string]rego.PreparedEvalQuery, m Module, claimsJSON []byte, cfg Config, refs map[string][]string) (*appraise.Decision, error) {
	t.Helper()
	q, ok := queries[m.Name]
	if !ok {
		pkg, err := packageOf(m)
		if err != nil {
			t.Fatal(err)
		}
		if q, err = prepareQuery(context.Background(), m, "data."+pkg+".deny", map[string]any{"reference_values": refs}); err != nil {
			t.Fatal(err)
		}
		queries[m.Name] = q
	}

	claims, err := jsonvalue.DecodeObject(claimsJSON)
	if err != nil {
		return nil, err
	}
	config, err := toJSONValue(cfg)
	if err != nil {
		t.Fatal(err)
	}
	input := map[string]any{"claims": claims, "config": config}
	rs, err := q.Eval(context.Background(), rego.EvalParsedInput(ast.LazyObject(input)))
	if err != nil {
		return nil, err
	}
	return denyDecision(m, rs)
}

// Every module decides on claims read in place, from the decision cache or
// from Rego over the members it reads, exactly as it decides over the
// whole decoded claims.
func TestAppraisalMatchesWholeClaims(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	refs := goodRefs()
	configs := []Config{{}, {AllowEmulated: true, TCBStatuses: []string{attest.TCBOutOfDate}}}
	queries := map[string]rego.PreparedEvalQuery{}
	texts := inputClaims(t)

	// The second round finds the decisions of the first in the cache.
	for round := range 2 {
		for _, m := range inputModules() {
			for name, raw := range texts {
				for i, cfg := range configs {
					want, wantErr := referenceDecision(t, queries, m, raw, cfg, refs)
					got, err := e.AppraiseJSON(ctx, m, raw, cfg, refs)
					where := fmt.Sprintf("round %d, module %s, claims %q, config %d", round, m.Name, name, i)
					if (err != nil) != (wantErr != nil) {
						t.Errorf("%s: error %v, want %v", where, err, wantErr)
						continue
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s: decision %+v, want %+v", where, got, want)
					}
				}
			}
		}
	}
}

// A module that reads claims the default policy does not read sees them:
// each decision follows the value of the claim it reads.
func TestModuleSeesUnreadClaims(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	reportData := denyModule("report-data", "input.claims.report_data", `input.claims.report_data != "00"`)
	named := denyModule("named-measurement", "input.claims.measurements.rtmr1", `input.claims.measurements.rtmr1 != "01"`)
	nonce := denyModule("nonce", `"nonce"`, `not input.claims.nonce == "0102"`)
	whole := denyModule("object-get", `object.get(input.claims, "report_data", "none")`, `object.get(input.claims, "report_data", "none") != "00"`)

	tests := []struct {
		name     string
		m        Module
		modify   func(*attest.Claims)
		accepted bool
	}{
		{"report data matches", reportData, func(c *attest.Claims) { c.ReportData = attest.Hex{0} }, true},
		{"report data differs", reportData, func(c *attest.Claims) { c.ReportData = attest.Hex{1} }, false},
		{"report data matches again", reportData, func(c *attest.Claims) { c.ReportData = attest.Hex{0} }, true},
		{"named measurement matches", named, func(c *attest.Claims) { c.SetMeasurement("rtmr1", []byte{1}) }, true},
		{"named measurement differs", named, func(c *attest.Claims) { c.SetMeasurement("rtmr1", []byte{2}) }, false},
		{"nonce matches", nonce, func(c *attest.Claims) { c.Nonce = attest.Hex{1, 2} }, true},
		{"nonce absent", nonce, func(*attest.Claims) {}, false},
		{"whole claims match", whole, func(c *attest.Claims) { c.ReportData = attest.Hex{0} }, true},
		{"whole claims differ", whole, func(c *attest.Claims) { c.ReportData = attest.Hex{2} }, false},
	}
	for _, tt := range tests {
		c := goodClaims()
		tt.modify(c)
		d, claimsJSON, err := e.AppraiseEncoded(ctx, tt.m, c, Config{}, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if d.Accepted != tt.accepted {
			t.Errorf("%s: accepted = %v, want %v (reasons %+v)", tt.name, d.Accepted, tt.accepted, d.Reasons)
		}
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if string(claimsJSON) != string(want) {
			t.Errorf("%s: encoded claims differ from json.Marshal:\n got %s\nwant %s", tt.name, claimsJSON, want)
		}
	}
}

func TestAppraiseEncodedNilClaims(t *testing.T) {
	d, _, err := NewEngine().AppraiseEncoded(context.Background(), DefaultAttestation(attest.TEESNP), nil, Config{}, goodRefs())
	if err == nil {
		t.Fatalf("nil claims appraised: %+v", d)
	}
	if !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("error %q does not say the claims are not a JSON object", err)
	}
}

// The engine keeps the config input of the last Config, so it must not
// see a later change to the caller's slice as the same Config.
func TestConfigChangeSeen(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	m := DefaultAttestation(attest.TEESNP)
	c := goodClaims()
	c.TCB.Status = attest.TCBOutOfDate

	statuses := []string{attest.TCBOutOfDate}
	d, err := e.Appraise(ctx, m, c, Config{TCBStatuses: statuses}, goodRefs())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Accepted {
		t.Fatalf("out-of-date TCB rejected with OutOfDate accepted: %+v", d.Reasons)
	}

	statuses[0] = attest.TCBUpToDate
	d, err = e.Appraise(ctx, m, c, Config{TCBStatuses: statuses}, goodRefs())
	if err != nil {
		t.Fatal(err)
	}
	if d.Accepted {
		t.Error("out-of-date TCB accepted after the caller changed the accepted statuses to UpToDate")
	}
}

func TestReferenceValuesDigest(t *testing.T) {
	digests := map[string]string{}
	for name, refs := range map[string]map[string][]string{
		"nil map":      nil,
		"one value":    {"snp.measurement": {"ab"}},
		"two values":   {"snp.measurement": {"ab", "cd"}},
		"joined value": {"snp.measurement": {"abcd"}},
		"other name":   {"snp.host_data": {"ab"}},
		"nil values":   {"snp.measurement": nil},
		"no values":    {"snp.measurement": {}},
		"two names":    {"snp.measurement": {"ab"}, "snp.host_data": {"ab"}},
		"invalid utf8": {"snp.measurement": {"\xff"}},
		"other utf8":   {"snp.measurement": {"\xfe"}},
	} {
		d := referenceValuesDigest(refs)
		if other, ok := digests[d]; ok {
			t.Errorf("%s and %s have the same digest", name, other)
		}
		digests[d] = name
	}

	a := map[string][]string{"snp.measurement": {"ab"}, "snp.host_data": {"cd"}}
	b := map[string][]string{"snp.host_data": {"cd"}}
	b["snp.measurement"] = []string{"ab"}
	if referenceValuesDigest(a) != referenceValuesDigest(b) {
		t.Error("equal maps have different digests")
	}
}

// Concurrent appraisals share the config input and the kept decisions.
// Under the race detector, this test shows that Rego only reads them.
func TestConcurrentAppraisals(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	modules := []Module{
		DefaultAttestation(attest.TEESNP),
		denyModule("config", "input.config", `input.config.allow_emulated; count(object.get(input.config, "tcb_statuses", [])) > 0`),
	}
	cfg := Config{AllowEmulated: true, TCBStatuses: []string{attest.TCBUpToDate}}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 50 {
				c := goodClaims()
				c.ReportData = attest.Hex{byte(g), byte(i)}
				_, err := e.Appraise(ctx, modules[(g+i)%len(modules)], c, cfg, goodRefs())
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkAppraiseJSONCorpus measures the default attestation policy on
// the claims of the first accepted evidence of the corpus (a few
// kilobytes, with the certificate chain and collateral), whose decision
// is reused after the first appraisal.
func BenchmarkAppraiseJSONCorpus(b *testing.B) {
	ctx := context.Background()
	texts := corpusClaims(b)
	if len(texts) == 0 {
		b.Skip("no accepted evidence in the corpus")
	}
	e := NewEngine()
	m := DefaultAttestation(attest.TEESNP)
	refs := goodRefs()
	for b.Loop() {
		if _, err := e.AppraiseJSON(ctx, m, texts[0], Config{}, refs); err != nil {
			b.Fatal(err)
		}
	}
}
