package token

import (
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// itaTestNonce is the verifier nonce value of the version 2 test tokens.
var itaTestNonce = []byte("verifier nonce value")

// itaV2Binding returns the verifier_nonce claim and the report data that
// binds it with heldData, as an attester computes them.
func itaV2Binding(heldData []byte) (map[string]any, string) {
	iat := []byte("2026-01-02 03:04:00 +0000 UTC")
	sum := sha512.Sum512(append(append(append([]byte{}, itaTestNonce...), iat...), heldData...))
	nonce := map[string]any{
		"val": base64.StdEncoding.EncodeToString(itaTestNonce), "iat": base64.StdEncoding.EncodeToString(iat), "signature": "c2ln",
	}
	return nonce, hex.EncodeToString(sum[:])
}

// itaV2Claims returns the claims of an Intel Trust Authority version 2
// token whose CPU attester object is member ("tdx" or "sgx"). They are
// shaped like decoded portal tokens. The attester's claims and its
// verifier_nonce are nested in its object, and the policy, verifier and
// registered claims are at the top level.
func itaV2Claims(t testing.TB, member string) map[string]any {
	t.Helper()
	heldData := []byte("attester held data")
	nonce, reportData := itaV2Binding(heldData)
	attester := map[string]any{
		"attester_tcb_status": "UpToDate", "attester_tcb_date": "2025-05-14T00:00:00Z",
		"attester_advisory_ids": []string{"INTEL-SA-00837"}, "attester_held_data": base64.StdEncoding.EncodeToString(heldData),
		"dbgstat": "disabled", "verifier_nonce": nonce,
	}
	switch member {
	case "tdx":
		attester["attester_type"] = "TDX"
		attester["tdx_is_debuggable"] = false
		attester["tdx_mrtd"] = strings.Repeat("5f", 48)
		attester["tdx_mrseam"] = strings.Repeat("2f", 48)
		attester["tdx_rtmr0"] = strings.Repeat("01", 48)
		attester["tdx_report_data"] = reportData
		attester["tdx_td_attributes"] = "0000001000000000"
		attester["tdx_seamsvn"] = 267
	case "sgx":
		attester["attester_type"] = "SGX"
		attester["sgx_is_debuggable"] = false
		attester["sgx_mrenclave"] = strings.Repeat("2f", 32)
		attester["sgx_mrsigner"] = strings.Repeat("d5", 32)
		attester["sgx_isvprodid"] = 1
		attester["sgx_isvsvn"] = 3
		attester["sgx_report_data"] = reportData
	default:
		t.Fatalf("no test claims for attester %q", member)
	}
	return map[string]any{
		"iss": "https://portal.trustauthority.intel.com", "jti": "0b5732a3-ffc8-464b-82e1-5f6f4c671292",
		"iat": testNow.Unix(), "nbf": testNow.Unix(), "exp": testNow.Add(5 * time.Minute).Unix(),
		"ver": "2.0.0", "eat_profile": "https://portal.trustauthority.intel.com/eat_profile.html", "intuse": "generic",
		"appraisal":             map[string]any{"method": "default", "ver": 2},
		"policy_ids_matched":    []any{map[string]any{"id": "749dd9b1-234f-41f5-a6ca-42c4312dd4f1", "version": "v1"}},
		"verifier_instance_ids": []string{"6f56f8ca-e546-4bbd-a020-e6ab2b3d2646"},
		member:                  attester,
	}
}

// nvgpuClaims returns an nvgpu object with the members that Intel's
// trustauthority-kbs reads.
func nvgpuClaims() map[string]any {
	return map[string]any{
		"attester_type": "NVGPU", "x-nvidia-overall-att-result": true,
		"claim_details": map[string]any{"GPU-0": map[string]any{"measres": "success"}},
	}
}

func member(m map[string]any, name string) map[string]any {
	return m[name].(map[string]any)
}

func checkPassed(t *testing.T, c *attest.Claims, name string) {
	t.Helper()
	ch, ok := c.FindCheck(name)
	if !ok {
		t.Errorf("check %s not recorded", name)
	} else if ch.Result != attest.CheckPassed {
		t.Errorf("check %s is %s (%s), want passed", name, ch.Result, ch.Detail)
	}
}

func TestITAVersion2(t *testing.T) {
	s := newService(t).withChain(t)
	set := setOf(t, s.jwks(t, "PS384"), s.chain[2].Raw)
	cases := []struct {
		name   string
		member string
		edit   func(m map[string]any)
		// kind is the expected error kind, nil when the token verifies.
		kind error
		// field is a part of the expected error's text.
		field string
		check func(t *testing.T, c *attest.Claims)
	}{
		{name: "tdx mapped", member: "tdx", check: func(t *testing.T, c *attest.Claims) {
			if got := c.Measurements["mrtd"].String(); got != strings.Repeat("5f", 48) {
				t.Errorf("mrtd %s", got)
			}
			if got := c.Measurements["mrseam"].String(); got != strings.Repeat("2f", 48) {
				t.Errorf("mrseam %s", got)
			}
			if got := c.Measurements["rtmr0"].String(); got != strings.Repeat("01", 48) {
				t.Errorf("rtmr0 %s", got)
			}
			if c.Measurement.String() != strings.Repeat("5f", 48) {
				t.Errorf("measurement %s, want the MRTD", c.Measurement)
			}
			if c.Debug {
				t.Error("tdx_is_debuggable false reported as debug")
			}
			if _, want := itaV2Binding([]byte("attester held data")); c.ReportData.String() != want {
				t.Errorf("report data %s, want %s", c.ReportData, want)
			}
			checkPassed(t, c, "nonce-binding")
			if c.TCB.Status != attest.TCBUpToDate {
				t.Errorf("TCB status %q", c.TCB.Status)
			}
			if c.TCB.Date == nil || !c.TCB.Date.Equal(time.Date(2025, 5, 14, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("TCB date %v", c.TCB.Date)
			}
			if len(c.TCB.AdvisoryIDs) != 1 || c.TCB.AdvisoryIDs[0] != "INTEL-SA-00837" {
				t.Errorf("advisories %v", c.TCB.AdvisoryIDs)
			}
			if c.Attributes["attester_type"] != "TDX" {
				t.Errorf("attester type %v", c.Attributes["attester_type"])
			}
			if c.Attributes["ver"] != "2.0.0" {
				t.Errorf("ver %v", c.Attributes["ver"])
			}
			if c.Attributes["td_attributes"] != "0000001000000000" {
				t.Errorf("td_attributes %v", c.Attributes["td_attributes"])
			}
		}},
		{name: "tdx nonce at top level", member: "tdx", edit: func(m map[string]any) {
			m["verifier_nonce"] = member(m, "tdx")["verifier_nonce"]
			delete(member(m, "tdx"), "verifier_nonce")
		}, check: func(t *testing.T, c *attest.Claims) {
			checkPassed(t, c, "nonce-binding")
		}},
		{name: "tdx nonce in both places", member: "tdx", edit: func(m map[string]any) {
			m["verifier_nonce"] = member(m, "tdx")["verifier_nonce"]
		}, check: func(t *testing.T, c *attest.Claims) {
			checkPassed(t, c, "nonce-binding")
		}},
		{name: "tdx two different nonces", member: "tdx", edit: func(m map[string]any) {
			m["verifier_nonce"] = map[string]any{"val": "b3RoZXI=", "iat": "b3RoZXI="}
		}, kind: attest.ErrMalformed, field: "verifier_nonce, tdx.verifier_nonce"},
		{name: "tdx debug", member: "tdx", edit: func(m map[string]any) {
			member(m, "tdx")["tdx_is_debuggable"] = true
		}, check: func(t *testing.T, c *attest.Claims) {
			if !c.Debug {
				t.Error("tdx_is_debuggable true not reported as debug")
			}
		}},
		{name: "tdx debug claim missing", member: "tdx", edit: func(m map[string]any) {
			delete(member(m, "tdx"), "tdx_is_debuggable")
		}, kind: attest.ErrMalformed, field: "tdx.tdx_is_debuggable"},
		{name: "tdx debug claim at top level only", member: "tdx", edit: func(m map[string]any) {
			delete(member(m, "tdx"), "tdx_is_debuggable")
			m["tdx_is_debuggable"] = false
		}, kind: attest.ErrMalformed, field: "tdx_is_debuggable, tdx"},
		{name: "tdx short measurement", member: "tdx", edit: func(m map[string]any) {
			member(m, "tdx")["tdx_rtmr1"] = strings.Repeat("00", 32)
		}, kind: attest.ErrMalformed, field: "tdx.tdx_rtmr1"},
		{name: "tdx mrtd missing", member: "tdx", edit: func(m map[string]any) {
			delete(member(m, "tdx"), "tdx_mrtd")
		}, kind: attest.ErrMalformed, field: "tdx.tdx_mrtd"},
		{name: "tdx nonce binding broken", member: "tdx", edit: func(m map[string]any) {
			member(m, "tdx")["attester_held_data"] = base64.StdEncoding.EncodeToString([]byte("other held data"))
		}, kind: attest.ErrBinding, field: "report data"},
		{name: "tdx held data at top level ignored", member: "tdx", edit: func(m map[string]any) {
			delete(member(m, "tdx"), "attester_held_data")
			m["attester_held_data"] = base64.StdEncoding.EncodeToString([]byte("attester held data"))
		}, kind: attest.ErrMalformed, field: "attester_held_data, tdx"},
		{name: "tdx object names SGX", member: "tdx", edit: func(m map[string]any) {
			member(m, "tdx")["attester_type"] = "SGX"
		}, kind: attest.ErrMalformed, field: "tdx.attester_type"},
		{name: "tdx object without attester type", member: "tdx", edit: func(m map[string]any) {
			delete(member(m, "tdx"), "attester_type")
		}, check: func(t *testing.T, c *attest.Claims) {
			if c.Attributes["attester_type"] != "TDX" {
				t.Errorf("attester type %v, want TDX from the object's name", c.Attributes["attester_type"])
			}
		}},
		{name: "tdx object not an object", member: "tdx", edit: func(m map[string]any) {
			m["tdx"] = "TDX"
		}, kind: attest.ErrMalformed, field: "tdx"},
		{name: "v1 and v2 claims", member: "tdx", edit: func(m map[string]any) {
			m["attester_type"] = "TDX"
			m["tdx_mrtd"] = strings.Repeat("aa", 48)
		}, kind: attest.ErrMalformed, field: "attester_type, tdx"},
		{name: "tdx and sgx objects", member: "tdx", edit: func(m map[string]any) {
			m["sgx"] = member(itaV2Claims(t, "sgx"), "sgx")
		}, kind: attest.ErrMalformed, field: "tdx, sgx"},
		{name: "sgx mapped", member: "sgx", check: func(t *testing.T, c *attest.Claims) {
			if got := c.Measurements["mrenclave"].String(); got != strings.Repeat("2f", 32) {
				t.Errorf("mrenclave %s", got)
			}
			if got := c.Measurements["mrsigner"].String(); got != strings.Repeat("d5", 32) {
				t.Errorf("mrsigner %s", got)
			}
			if c.Measurement.String() != strings.Repeat("2f", 32) {
				t.Errorf("measurement %s, want the MRENCLAVE", c.Measurement)
			}
			if c.Debug {
				t.Error("sgx_is_debuggable false reported as debug")
			}
			if c.Attributes["isvprodid"] != int64(1) || c.Attributes["isvsvn"] != int64(3) {
				t.Errorf("isvprodid %v, isvsvn %v", c.Attributes["isvprodid"], c.Attributes["isvsvn"])
			}
			checkPassed(t, c, "nonce-binding")
			if c.TCB.Status != attest.TCBUpToDate {
				t.Errorf("TCB status %q", c.TCB.Status)
			}
		}},
		{name: "sgx debug", member: "sgx", edit: func(m map[string]any) {
			member(m, "sgx")["sgx_is_debuggable"] = true
		}, check: func(t *testing.T, c *attest.Claims) {
			if !c.Debug {
				t.Error("sgx_is_debuggable true not reported as debug")
			}
		}},
		{name: "sgx debug claim missing", member: "sgx", edit: func(m map[string]any) {
			delete(member(m, "sgx"), "sgx_is_debuggable")
		}, kind: attest.ErrMalformed, field: "sgx.sgx_is_debuggable"},
		{name: "sgx long mrenclave", member: "sgx", edit: func(m map[string]any) {
			member(m, "sgx")["sgx_mrenclave"] = strings.Repeat("2f", 48)
		}, kind: attest.ErrMalformed, field: "sgx.sgx_mrenclave"},
		{name: "sgx nonce binding broken", member: "sgx", edit: func(m map[string]any) {
			member(m, "sgx")["sgx_report_data"] = strings.Repeat("00", 64)
		}, kind: attest.ErrBinding, field: "report data"},
		{name: "tdx with nvgpu", member: "tdx", edit: func(m map[string]any) {
			m["nvgpu"] = nvgpuClaims()
		}, check: func(t *testing.T, c *attest.Claims) {
			ch, ok := c.FindCheck("nvgpu-claims")
			if !ok {
				t.Fatal("no nvgpu-claims check")
			}
			if ch.Result != attest.CheckNotChecked {
				t.Errorf("nvgpu-claims is %s, want not checked", ch.Result)
			}
			if !ch.Required {
				t.Error("nvgpu-claims is not required, so an appraisal could accept a GPU it never checked")
			}
			if c.Attributes["nvgpu_attester_type"] != "NVGPU" {
				t.Errorf("nvgpu attester type %v", c.Attributes["nvgpu_attester_type"])
			}
			if c.Attributes["nvgpu_overall_att_result"] != true {
				t.Errorf("nvgpu overall result %v", c.Attributes["nvgpu_overall_att_result"])
			}
			if c.Attributes["nvgpu_devices"] != 1 {
				t.Errorf("nvgpu devices %v", c.Attributes["nvgpu_devices"])
			}
			if got := c.Measurements["mrtd"].String(); got != strings.Repeat("5f", 48) {
				t.Errorf("mrtd %s, want the CPU attester mapped", got)
			}
		}},
		{name: "nvgpu not an object", member: "tdx", edit: func(m map[string]any) {
			m["nvgpu"] = []string{"GPU-0"}
		}, kind: attest.ErrMalformed, field: "nvgpu"},
		{name: "unknown attester only", member: "tdx", edit: func(m map[string]any) {
			m["verifier_nonce"] = member(m, "tdx")["verifier_nonce"]
			m["tpm"] = member(m, "tdx")
			delete(m, "tdx")
		}, check: func(t *testing.T, c *attest.Claims) {
			ch, ok := c.FindCheck("tee-claims")
			if !ok {
				t.Fatal("no tee-claims check")
			}
			if ch.Result != attest.CheckNotChecked || !ch.Required {
				t.Errorf("tee-claims is %s, required %v; want a required check not checked", ch.Result, ch.Required)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := itaV2Claims(t, tc.member)
			if tc.edit != nil {
				tc.edit(claims)
			}
			c, err := verifyWith(t, ITA, s.sign(t, jose.PS384, claims, nil), set, itaTestNonce)
			if tc.kind != nil {
				expectRejected(t, err, tc.kind, tc.field)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// TestITAVersion2GPURejected appraises a TD token with an nvgpu part: the
// default appraisal rejects it and names the GPU claims, because Cloister
// did not appraise them.
func TestITAVersion2GPURejected(t *testing.T) {
	s := newService(t).withChain(t)
	opts := attest.Options{At: testNow, Collateral: setOf(t, s.jwks(t, "PS384"), s.chain[2].Raw)}
	claims := itaV2Claims(t, "tdx")
	claims["nvgpu"] = nvgpuClaims()
	res := appraise.Evaluate(context.Background(), attest.Evidence{Data: []byte(s.sign(t, jose.PS384, claims, nil))}, opts, appraise.Options{})
	if res.Verdict != appraise.Reject {
		t.Fatalf("verdict %s, want reject", res.Verdict)
	}
	if !strings.Contains(res.Error.Error(), "nvgpu") {
		t.Errorf("rejection %q does not name the nvgpu claims", res.Error)
	}

	delete(claims, "nvgpu")
	res = appraise.Evaluate(context.Background(), attest.Evidence{Data: []byte(s.sign(t, jose.PS384, claims, nil))}, opts, appraise.Options{})
	if res.Verdict != appraise.Accept {
		t.Errorf("same token without nvgpu: verdict %s (%v), want accept", res.Verdict, res.Error)
	}
}

// TestITAVersion1Unchanged keeps the version 1 error fields: the top-level
// claim names, without an object prefix.
func TestITAVersion1Unchanged(t *testing.T) {
	s := newService(t).withChain(t)
	set := setOf(t, s.jwks(t, "PS384"), s.chain[2].Raw)
	cases := []struct {
		name  string
		edit  func(m map[string]any)
		field string
	}{
		{"debug claim missing", func(m map[string]any) { delete(m, "tdx_is_debuggable") }, "malformed: tdx_is_debuggable:"},
		{"short mrseam", func(m map[string]any) { m["tdx_mrseam"] = "2f2f" }, "malformed: tdx_mrseam:"},
		{"nonce val not base64", func(m map[string]any) { member(m, "verifier_nonce")["val"] = "%%" }, "malformed: verifier_nonce.val:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := itaClaims(t)
			tc.edit(claims)
			_, err := verifyWith(t, ITA, s.sign(t, jose.PS384, claims, nil), set, nil)
			if err == nil || !strings.HasPrefix(err.Error(), tc.field) {
				t.Errorf("error %v, want one starting %q", err, tc.field)
			}
		})
	}
}
