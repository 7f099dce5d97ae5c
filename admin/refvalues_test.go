package admin

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/store"

	// The verifiers of the TEEs in fixedReferenceClaims, for
	// TestReferenceClaimsMatchVerifiedClaims.
	_ "github.com/cloister-dev/cloister/tee/dcap"
	_ "github.com/cloister-dev/cloister/tee/nitro"
	_ "github.com/cloister-dev/cloister/tee/snp"
)

// Two SEV-SNP measurements (48 bytes) in the form the store keeps.
var (
	measurementA = strings.Repeat("a1", 48)
	measurementB = strings.Repeat("b2", 48)
)

func TestCheckReferenceValue(t *testing.T) {
	tests := []struct {
		name, value string
		want        string
		// words are parts of the expected error message. Nil means that
		// the value is valid.
		words []string
	}{
		{"snp.measurement", measurementA, measurementA, nil},
		{"snp.measurement", strings.ToUpper(measurementA), measurementA, nil},
		{"snp.measurement", "0x" + measurementA, measurementA, nil},
		{"snp.host_data", strings.Repeat("00", 32), strings.Repeat("00", 32), nil},
		{"snp.chip_id", strings.Repeat("c3", 64), strings.Repeat("c3", 64), nil},
		{"tdx.measurement", strings.Repeat("0d", 48), strings.Repeat("0d", 48), nil},
		{"tdx.rtmr3", strings.Repeat("0d", 48), strings.Repeat("0d", 48), nil},
		{"tdx.host_data", strings.Repeat("0d", 48), strings.Repeat("0d", 48), nil},
		{"sgx.mrsigner", strings.Repeat("5e", 32), strings.Repeat("5e", 32), nil},
		{"nitro.pcr8", strings.Repeat("e8", 48), strings.Repeat("e8", 48), nil},
		{"psa.measurement", "ABCD", "abcd", nil},
		// Names that the default policy does not compare as bytes are
		// stored as they are, for custom policies.
		{"sgx.isvprodid", "7", "7", nil},
		{"psa.sw_bl", "Not Hex", "Not Hex", nil},
		{"snp.measurment", "anything", "anything", nil},

		{"snp.measurement", "nothex", "", []string{"snp.measurement", `"nothex"`, `'n' is not a hex digit`, "SEV-SNP MEASUREMENT", "96 hex digits (48 bytes)"}},
		{"snp.measurement", "abc", "", []string{`"abc"`, "odd number of hex digits"}},
		{"snp.measurement", "", "", []string{`""`, "no hex digits"}},
		{"snp.measurement", "0x", "", []string{`"0x"`, "no hex digits"}},
		{"snp.measurement", strings.Repeat("ab", 32), "", []string{"64 hex digits", "96 hex digits (48 bytes)"}},
		{"snp.host_data", strings.Repeat("ab", 48), "", []string{"SEV-SNP HOST_DATA", "64 hex digits (32 bytes)"}},
		{"tdx.mrtd", strings.Repeat("ab", 32), "", []string{"TDX MRTD", "96 hex digits"}},
		{"sgx.measurement", strings.Repeat("ab", 48), "", []string{"SGX MRENCLAVE", "64 hex digits (32 bytes)"}},
		{"nitro.pcr0", "ab", "", []string{"Nitro PCR0", "64, 96 or 128 hex digits (32, 48 or 64 bytes)"}},
		{"cca.measurement", "xyz", "", []string{"cca measurement", "hex digits, two for each byte"}},
		{"snp.measurement", " " + measurementA, "", []string{`' ' is not a hex digit`}},
		{"snp.measurement", strings.Repeat("z", 4000), "", []string{"(4000 bytes)"}},

		{"nosuchtee.foo", "1", "", []string{`"nosuchtee.foo"`, `"nosuchtee" is not a known TEE`, "snp, tdx, sgx"}},
		{"svn", "1", "", []string{`"svn"`, "<tee>.<claim>", "snp, tdx, sgx"}},
		{"snp.", "1", "", []string{`"snp."`, "<tee>.<claim>"}},
		{".measurement", "1", "", []string{`".measurement"`, "<tee>.<claim>"}},
		{"tdx.chip_id", strings.Repeat("ab", 64), "", []string{`"tdx.chip_id"`, "tdx claims have no chip_id", "tdx.measurement"}},
		{"sgx.host_data", strings.Repeat("ab", 32), "", []string{"sgx claims have no host_data", "sgx.mrsigner"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			got, err := CheckReferenceValue(tt.name, tt.value)
			if tt.words == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if got != tt.want {
					t.Errorf("value = %q, want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %q", got)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDefaultPolicyNames(t *testing.T) {
	names, ok := DefaultPolicyNames("snp")
	if !ok || !slices.Equal(names, []string{"snp.chip_id", "snp.host_data", "snp.measurement"}) {
		t.Errorf("DefaultPolicyNames(snp) = %v, %v; want the three SEV-SNP claims", names, ok)
	}
	if names, ok := DefaultPolicyNames("psa"); ok {
		t.Errorf("DefaultPolicyNames(psa) = %v, true; want false, because PSA names measurements after the evidence", names)
	}
}

// The table of fixed claims must agree with what the verifiers report.
// Every byte-string claim of real evidence that the default policy compares
// is accepted as a reference value. Every name that the table rejects as
// absent is absent from the claims. The cases include evidence that the
// default appraisal rejects, such as debug enclaves, because their claims
// have the same fields.
func TestReferenceClaimsMatchVerifiedClaims(t *testing.T) {
	for tee := range fixedReferenceClaims {
		for _, c := range corpus.Cases(t, string(tee)) {
			if c.Negative() {
				continue
			}
			t.Run(c.Name, func(t *testing.T) {
				claims, err := attest.Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, c.Options(t))
				if claims == nil {
					t.Fatalf("no claims: %v", err)
				}
				if claims.TEE != tee {
					t.Fatalf("claims are of TEE %s, want %s", claims.TEE, tee)
				}
				checkFixedClaims(t, claims)
			})
		}
	}
}

func checkFixedClaims(t *testing.T, claims *attest.Claims) {
	t.Helper()
	values := map[string]attest.Hex{"measurement": claims.Measurement, "host_data": claims.HostData, "chip_id": claims.ChipID}
	for name, v := range claims.Measurements {
		values[name] = v
	}
	for name, v := range values {
		_, listed := fixedReferenceClaims[claims.TEE][name]
		switch {
		case len(v) > 0 && !listed:
			t.Errorf("claim %s = %s is not in fixedReferenceClaims", name, v)
		case len(v) == 0 && listed:
			t.Errorf("claim %s is empty but listed in fixedReferenceClaims", name)
		case len(v) > 0:
			if _, err := CheckReferenceValue(string(claims.TEE)+"."+name, v.String()); err != nil {
				t.Errorf("the claim's own value is rejected: %v", err)
			}
		}
	}
}

func TestReferenceValueRejectedThroughClient(t *testing.T) {
	srv, s := newTestServer(t, Config{APIKey: testKey})
	c := &Client{BaseURL: srv.URL, APIKey: testKey}
	ctx := context.Background()

	tests := []struct {
		name, value string
		words       []string
	}{
		{"snp.measurement", "nothex", []string{"snp.measurement", `"nothex"`, "96 hex digits"}},
		{"nosuchtee.foo", "1", []string{`"nosuchtee.foo"`, "not a known TEE", "snp, tdx"}},
		{"tdx.chip_id", strings.Repeat("ab", 64), []string{"tdx claims have no chip_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.AddReferenceValue(ctx, store.ReferenceValue{Name: tt.name, Value: tt.value})
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("err = %v, want a problem document", err)
			}
			if p.Status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", p.Status)
			}
			if strings.HasPrefix(p.Detail, errBadRequest.Error()) {
				t.Errorf("detail %q starts with the internal error marker", p.Detail)
			}
			for _, w := range tt.words {
				if !strings.Contains(p.Detail, w) {
					t.Errorf("detail %q does not contain %q", p.Detail, w)
				}
			}
		})
	}

	if list, err := s.ListReferenceValues(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("reference values after rejected requests = %+v, %v; want none", list, err)
	}
	records, err := s.ListAudit(ctx, store.AuditQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != len(tests) {
		t.Fatalf("audit records after %d rejected requests = %+v; want one each", len(tests), records)
	}
	for i, rec := range records {
		if rec.Action != store.AuditAdmin || rec.Verdict != "rejected" || rec.Requester != "api-key" {
			t.Errorf("record %d = %+v, want an admin record of api-key with verdict rejected", i, rec)
		}
		if want := "POST " + PathPrefix + "refvalues/" + tests[i].name; rec.Resource != want {
			t.Errorf("record %d resource = %q, want %q", i, rec.Resource, want)
		}
		if !strings.Contains(rec.Reason, tests[i].words[0]) {
			t.Errorf("record %d reason = %q, want it to contain %q", i, rec.Reason, tests[i].words[0])
		}
	}
}

// A value is stored in lower case, and removing it matches in any case, so
// that the value printed by other tools can be passed as it is.
func TestReferenceValueNormalizedThroughClient(t *testing.T) {
	srv, _ := newTestServer(t, Config{APIKey: testKey})
	c := &Client{BaseURL: srv.URL, APIKey: testKey}
	ctx := context.Background()

	rv, err := c.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: "0x" + strings.ToUpper(measurementA)})
	if err != nil {
		t.Fatalf("AddReferenceValue: %v", err)
	}
	if rv.Value != measurementA {
		t.Errorf("stored value = %q, want %q", rv.Value, measurementA)
	}
	if err := c.RemoveReferenceValue(ctx, "snp.measurement", strings.ToUpper(measurementA)); err != nil {
		t.Errorf("RemoveReferenceValue in upper case: %v", err)
	}
}

// Values stored before the check existed, under names it rejects, can
// still be listed and removed.
func TestReferenceValueUncheckedRemoved(t *testing.T) {
	srv, s := newTestServer(t, Config{APIKey: testKey})
	c := &Client{BaseURL: srv.URL, APIKey: testKey}
	ctx := context.Background()
	err := s.Tx(ctx, func(tx store.Tx) error {
		if _, err := tx.AddReferenceValue(ctx, store.ReferenceValue{Name: "nosuchtee.foo", Value: "x"}); err != nil {
			return err
		}
		_, err := tx.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: "nothex"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	if list, err := c.ListReferenceValues(ctx, ""); err != nil || len(list) != 2 {
		t.Errorf("ListReferenceValues = %+v, %v; want both values", list, err)
	}
	if err := c.RemoveReferenceValue(ctx, "nosuchtee.foo", ""); err != nil {
		t.Errorf("remove every value of nosuchtee.foo: %v", err)
	}
	if err := c.RemoveReferenceValue(ctx, "snp.measurement", "nothex"); err != nil {
		t.Errorf("remove snp.measurement = nothex: %v", err)
	}
}

// Removing a hex value removes every stored form of it, including the
// upper-case and 0x forms that older versions stored as typed, because the
// default attestation policy compares them without regard to case.
func TestReferenceValueLegacyFormsRemoved(t *testing.T) {
	tests := []struct {
		name      string
		refName   string // snp.measurement when empty
		stored    []string
		remove    string
		wantLeft  []string
		wantError bool
	}{
		{"legacy upper case by upper case", "", []string{strings.ToUpper(measurementA)}, strings.ToUpper(measurementA), nil, false},
		{"legacy upper case by lower case", "", []string{strings.ToUpper(measurementA)}, measurementA, nil, false},
		{"legacy and normalized forms", "", []string{strings.ToUpper(measurementA), measurementA, "0x" + measurementA}, strings.ToUpper(measurementA), nil, false},
		{"other value kept", "", []string{strings.ToUpper(measurementA), measurementB}, measurementA, []string{measurementB}, false},
		{"no such value", "", []string{measurementB}, measurementA, []string{measurementB}, true},
		{"unchecked name in any case", "psa.sw_bl", []string{"ABCD", "abcd", "other"}, "abcd", []string{"other"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s store.Store) {
				srv, _ := newTestServer(t, Config{APIKey: testKey, Store: s})
				c := &Client{BaseURL: srv.URL, APIKey: testKey}
				ctx := context.Background()
				refName := tt.refName
				if refName == "" {
					refName = "snp.measurement"
				}
				err := s.Tx(ctx, func(tx store.Tx) error {
					for _, v := range tt.stored {
						if _, err := tx.AddReferenceValue(ctx, store.ReferenceValue{Name: refName, Value: v}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}

				err = c.RemoveReferenceValue(ctx, refName, tt.remove)
				if (err != nil) != tt.wantError {
					t.Fatalf("RemoveReferenceValue: %v, want error %v", err, tt.wantError)
				}
				var p *Problem
				if tt.wantError && (!errors.As(err, &p) || p.Status != http.StatusNotFound) {
					t.Errorf("RemoveReferenceValue: err = %v, want 404", err)
				}

				list, err := s.ListReferenceValues(ctx, refName)
				if err != nil {
					t.Fatal(err)
				}
				var left []string
				for _, rv := range list {
					left = append(left, rv.Value)
				}
				if !slices.Equal(left, tt.wantLeft) {
					t.Errorf("values left = %q, want %q", left, tt.wantLeft)
				}
			})
		})
	}
}

// A value parameter that is present but empty, such as an unset shell
// variable, is rejected rather than taken as "remove every value".
func TestReferenceValueEmptyValueRejected(t *testing.T) {
	srv, s := newTestServer(t, Config{APIKey: testKey})
	ctx := context.Background()
	if _, err := s.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: measurementA}); err != nil {
		t.Fatal(err)
	}

	status, body := sendWithToken(t, srv, http.MethodDelete, PathPrefix+"refvalues/snp.measurement?value=", testKey, nil)
	if status != http.StatusBadRequest {
		t.Errorf("status = %d, want 400; body %s", status, body)
	}

	list, err := s.ListReferenceValues(ctx, "snp.measurement")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Errorf("%d values left, want the 1 stored", len(list))
	}
}

// Any value that CheckReferenceValue accepts is accepted again unchanged,
// so that normalizing a stored value finds it.
func FuzzCheckReferenceValue(f *testing.F) {
	for _, seed := range [][2]string{
		{"snp.measurement", measurementA}, {"snp.measurement", "0X" + strings.ToUpper(measurementB)},
		{"psa.measurement", "AbCd"}, {"sgx.isvsvn", "7"}, {"nosuchtee.x", "1"}, {"tdx.chip_id", "00"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		checked, err := CheckReferenceValue(name, value)
		if err != nil {
			return
		}
		again, err := CheckReferenceValue(name, checked)
		if err != nil || again != checked {
			t.Errorf("CheckReferenceValue(%q, %q) = %q, then %q, %v; want the same value without error", name, value, checked, again, err)
		}
		if normalizeReferenceValue(name, value) != checked {
			t.Errorf("normalizeReferenceValue(%q, %q) = %q, want %q", name, value, normalizeReferenceValue(name, value), checked)
		}
	})
}

// A reference value body that encoding/json alone would accept, but whose
// meaning depends on the JSON reader, is rejected and stores nothing.
func TestAddReferenceValueStrictBody(t *testing.T) {
	srv, st := newTestServer(t, Config{APIKey: testKey})
	tests := []struct {
		name string
		body string
		want string
	}{
		{"repeated value", `{"value":"` + strings.Repeat("a1", 48) + `","value":"` + strings.Repeat("b2", 48) + `"}`, `duplicate member \"value\"`},
		{"value in capitals", `{"Value":"` + strings.Repeat("a1", 48) + `"}`, `unknown member \"Value\"`},
		{"value twice in two cases", `{"value":"` + strings.Repeat("a1", 48) + `","VALUE":"` + strings.Repeat("b2", 48) + `"}`, `unknown member \"VALUE\"`},
		{"trailing text", `{"value":"` + strings.Repeat("a1", 48) + `"} trailing`, "after the JSON object"},
		{"second object", `{"value":"` + strings.Repeat("a1", 48) + `"}{"value":"` + strings.Repeat("b2", 48) + `"}`, "after the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := sendWithToken(t, srv, http.MethodPost, PathPrefix+"refvalues/snp.measurement", testKey, []byte(tt.body))
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", status, body)
			}
			if !strings.Contains(string(body), tt.want) {
				t.Errorf("body %s does not contain %s", body, tt.want)
			}
		})
	}
	list, err := st.ListReferenceValues(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("reference values after rejected bodies = %+v, want none", list)
	}
}
