package token

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// maaTDXReportData is the report data of Microsoft's tdxvm sample token.
const maaTDXReportData = "93c6db49f2318387bcebdad0275e206725d948f9000d900344aa44abaef14596" + "0000000000000000000000000000000000000000000000000000000000000000"

// maaTDXTEEClaims returns the TDX claims of an MAA token with the names and
// values of Microsoft's tdxvm sample token (attestation-token-examples).
func maaTDXTEEClaims() map[string]any {
	zero := strings.Repeat("00", 48)
	return map[string]any{
		"attester_tcb_status": "UpToDate", "dbgstat": "disabled",
		"tdx_mrconfigid": zero, "tdx_mrowner": zero, "tdx_mrownerconfig": zero,
		"tdx_mrseam":       "2fd279c16164a93dd5bf373d834328d46008c2b693af9ebb865b08b2ced320c9a89b4869a9fab60fbe9d0c5a5363c656",
		"tdx_mrsignerseam": zero,
		"tdx_mrtd":         "5be56d418d33661a6c21da77c9503a07e430b35eb92a0bd042a6b3c4e79b3c82bb1c594e770d0d129a0724669f1e953f",
		"tdx_report_data":  maaTDXReportData,
		"tdx_rtmr0":        zero, "tdx_rtmr1": zero, "tdx_rtmr2": zero, "tdx_rtmr3": zero,
		"tdx_seam_attributes": "0000000000000000", "tdx_seamsvn": 3, "tdx_td_attributes": "0000000000000000",
		"tdx_td_attributes_debug": false, "tdx_td_attributes_key_locker": false, "tdx_td_attributes_perfmon": false,
		"tdx_td_attributes_protection_keys": false, "tdx_td_attributes_septve_disable": false,
		"tdx_tee_tcb_svn": "03000600000000000000000000000000", "tdx_xfam": "e718060000000000",
		"x-ms-attestation-type": "tdxvm", "x-ms-compliance-status": "azure-compliant-cvm",
	}
}

func maaRegistered() map[string]any {
	return map[string]any{
		"iss": "https://maasand001.eus.attest.azure.net", "jti": "5f65006d573bc1c04f67820348c20f5d8da72ddbbd4d6c03da8de9f11b5cf29b",
		"iat": testNow.Unix(), "nbf": testNow.Unix(), "exp": testNow.Add(8 * time.Hour).Unix(),
		"x-ms-policy-hash": "B56nbp5slhw66peoRYkpdq1WykMkEworvdol08hnMXE", "x-ms-ver": "1.0",
		"x-ms-runtime": map[string]any{"client-payload": map[string]any{"nonce": base64.StdEncoding.EncodeToString([]byte("midnight-srs"))}},
	}
}

// maaDirectTDXClaims returns a direct TDX token (x-ms-attestation-type
// tdxvm) shaped like Microsoft's sample, which carries the TDX claims at
// the top level.
func maaDirectTDXClaims() map[string]any {
	m := maaRegistered()
	for k, v := range maaTDXTEEClaims() {
		m[k] = v
	}
	m["eat_profile"] = "https://aka.ms/maa-eat-profile-tdxvm"
	m["intuse"] = "generic"
	return m
}

// maaCVMTDXClaims returns an Azure confidential VM token (azurevm) whose
// x-ms-isolation-tee contains the TDX claims.
func maaCVMTDXClaims() map[string]any {
	m := maaRegistered()
	m["x-ms-attestation-type"] = "azurevm"
	m["secureboot"] = true
	m["x-ms-azurevm-vmid"] = "ABD9EA99-D837-4F68-AD3E-C87C88006AFA"
	m["x-ms-isolation-tee"] = maaTDXTEEClaims()
	return m
}

// maaSGXHeldData is the enclave held data of the SGX test token.
var maaSGXHeldData = []byte{1, 2, 3, 4, 5, 6}

// maaSGXClaims returns an SGX enclave token with the claims of Microsoft's
// claim sets and SGX sample token. Its report data starts with
// SHA-256(x-ms-sgx-ehd), the binding MAA verifies.
func maaSGXClaims() map[string]any {
	sum := sha256.Sum256(maaSGXHeldData)
	m := maaRegistered()
	delete(m, "x-ms-runtime")
	m["x-ms-attestation-type"] = "sgx"
	m["x-ms-sgx-is-debuggable"] = false
	m["x-ms-sgx-mrenclave"] = "d37d983a85d63fb49649610e2eba0930ecdbff6d113aca3ff3fc7261696c0134"
	m["x-ms-sgx-mrsigner"] = "feb995eb86c349ac98e5afbbb5732ca7376ec9979002702ea17ad476e0853a04"
	m["x-ms-sgx-product-id"] = 1
	m["x-ms-sgx-svn"] = 8888
	m["x-ms-sgx-ehd"] = base64.RawURLEncoding.EncodeToString(maaSGXHeldData)
	m["x-ms-sgx-report-data"] = hex.EncodeToString(sum[:]) + strings.Repeat("00", 32)
	m["x-ms-sgx-collateral"] = map[string]any{"quotehash": strings.Repeat("07", 32), "tcbinfohash": strings.Repeat("15", 32)}
	return m
}

func isolationTEE(m map[string]any) map[string]any {
	return member(m, "x-ms-isolation-tee")
}

func checkTDXMapped(t *testing.T, c *attest.Claims) {
	t.Helper()
	mrtd := "5be56d418d33661a6c21da77c9503a07e430b35eb92a0bd042a6b3c4e79b3c82bb1c594e770d0d129a0724669f1e953f"
	if got := c.Measurements["mrtd"].String(); got != mrtd {
		t.Errorf("mrtd %s", got)
	}
	if c.Measurement.String() != mrtd {
		t.Errorf("measurement %s, want the MRTD", c.Measurement)
	}
	if got := c.Measurements["mrseam"].String(); !strings.HasPrefix(got, "2fd279c1") {
		t.Errorf("mrseam %s", got)
	}

	for _, name := range []string{"rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrsignerseam", "mrowner", "mrownerconfig", "mrconfigid"} {
		if got := c.Measurements[name]; len(got) != 48 {
			t.Errorf("%s has %d bytes, want 48", name, len(got))
		}
	}
	if c.Debug {
		t.Error("tdx_td_attributes_debug false reported as debug")
	}
	if c.ReportData.String() != maaTDXReportData {
		t.Errorf("report data %s", c.ReportData)
	}
	if c.TCB.Status != attest.TCBUpToDate {
		t.Errorf("TCB status %q", c.TCB.Status)
	}

	if c.Attributes["x-ms-compliance-status"] != "azure-compliant-cvm" {
		t.Errorf("compliance status %v", c.Attributes["x-ms-compliance-status"])
	}
	if c.Attributes["isolation_tee"] != "tdxvm" {
		t.Errorf("isolation TEE %v", c.Attributes["isolation_tee"])
	}
	if c.Attributes["tee_tcb_svn"] != "03000600000000000000000000000000" {
		t.Errorf("tee_tcb_svn %v", c.Attributes["tee_tcb_svn"])
	}
	if string(c.Nonce) != "midnight-srs" {
		t.Errorf("nonce %q", c.Nonce)
	}
}

func TestMAATDXAndSGX(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, "RS256"))
	cases := []struct {
		name   string
		claims func() map[string]any
		edit   func(m map[string]any)
		// nonce is the expected nonce passed to Verify.
		nonce []byte
		// kind is the expected error kind, nil when the token verifies.
		kind error
		// field is a part of the expected error's text.
		field string
		check func(t *testing.T, c *attest.Claims)
	}{
		{name: "direct tdx mapped", claims: maaDirectTDXClaims, nonce: []byte("midnight-srs"), check: checkTDXMapped},
		{name: "cvm tdx mapped", claims: maaCVMTDXClaims, nonce: []byte("midnight-srs"), check: func(t *testing.T, c *attest.Claims) {
			checkTDXMapped(t, c)
			if c.Attributes["x-ms-attestation-type"] != "azurevm" {
				t.Errorf("attestation type %v", c.Attributes["x-ms-attestation-type"])
			}
		}},
		{name: "cvm tdx debug", claims: maaCVMTDXClaims, edit: func(m map[string]any) {
			isolationTEE(m)["tdx_td_attributes_debug"] = true
		}, check: func(t *testing.T, c *attest.Claims) {
			if !c.Debug {
				t.Error("tdx_td_attributes_debug true not reported as debug")
			}
		}},
		{name: "cvm tdx debug claim missing", claims: maaCVMTDXClaims, edit: func(m map[string]any) {
			delete(isolationTEE(m), "tdx_td_attributes_debug")
		}, kind: attest.ErrMalformed, field: "x-ms-isolation-tee.tdx_td_attributes_debug"},
		{name: "direct tdx debug claim missing", claims: maaDirectTDXClaims, edit: func(m map[string]any) {
			delete(m, "tdx_td_attributes_debug")
		}, kind: attest.ErrMalformed, field: "malformed: tdx_td_attributes_debug:"},
		{name: "direct tdx debug claim not boolean", claims: maaDirectTDXClaims, edit: func(m map[string]any) {
			m["tdx_td_attributes_debug"] = "false"
		}, kind: attest.ErrMalformed, field: "tdx_td_attributes_debug"},
		{name: "cvm tdx long rtmr", claims: maaCVMTDXClaims, edit: func(m map[string]any) {
			isolationTEE(m)["tdx_rtmr2"] = strings.Repeat("00", 64)
		}, kind: attest.ErrMalformed, field: "x-ms-isolation-tee.tdx_rtmr2"},
		{name: "direct tdx short mrtd", claims: maaDirectTDXClaims, edit: func(m map[string]any) {
			m["tdx_mrtd"] = strings.Repeat("5b", 32)
		}, kind: attest.ErrMalformed, field: "tdx_mrtd"},
		{name: "direct tdx short report data", claims: maaDirectTDXClaims, edit: func(m map[string]any) {
			m["tdx_report_data"] = strings.Repeat("93", 32)
		}, kind: attest.ErrMalformed, field: "tdx_report_data"},
		{name: "direct tdx unknown tcb status", claims: maaDirectTDXClaims, edit: func(m map[string]any) {
			m["attester_tcb_status"] = "Fine"
		}, kind: attest.ErrMalformed, field: "attester_tcb_status"},
		{name: "direct tdx out of date", claims: maaDirectTDXClaims, edit: func(m map[string]any) {
			m["attester_tcb_status"] = "OutOfDate"
		}, check: func(t *testing.T, c *attest.Claims) {
			if c.TCB.Status != attest.TCBOutOfDate {
				t.Errorf("TCB status %q, want OutOfDate", c.TCB.Status)
			}
		}},
		{name: "cvm tdx without tcb status", claims: maaCVMTDXClaims, edit: func(m map[string]any) {
			delete(isolationTEE(m), "attester_tcb_status")
		}, check: func(t *testing.T, c *attest.Claims) {
			if c.TCB.Status != "" {
				t.Errorf("TCB status %q, want none", c.TCB.Status)
			}
			if ch, ok := c.FindCheck("tcb-status"); !ok || ch.Result != attest.CheckNotChecked {
				t.Errorf("tcb-status check %+v (recorded %v), want not checked", ch, ok)
			}
		}},
		{name: "cvm unknown isolation tee", claims: maaCVMTDXClaims, edit: func(m map[string]any) {
			m["x-ms-isolation-tee"] = map[string]any{"x-ms-attestation-type": "futurevm"}
		}, check: func(t *testing.T, c *attest.Claims) {
			ch, ok := c.FindCheck("tee-claims")
			if !ok {
				t.Fatal("no tee-claims check")
			}
			if ch.Result != attest.CheckNotChecked || !ch.Required {
				t.Errorf("tee-claims is %s, required %v; want a required check not checked", ch.Result, ch.Required)
			}
		}},
		{name: "cvm isolation tee type not text", claims: maaCVMTDXClaims, edit: func(m map[string]any) {
			isolationTEE(m)["x-ms-attestation-type"] = 7
		}, kind: attest.ErrMalformed, field: "x-ms-isolation-tee.x-ms-attestation-type"},
		{name: "sgx mapped", claims: maaSGXClaims, check: func(t *testing.T, c *attest.Claims) {
			if got := c.Measurements["mrenclave"].String(); got != "d37d983a85d63fb49649610e2eba0930ecdbff6d113aca3ff3fc7261696c0134" {
				t.Errorf("mrenclave %s", got)
			}
			if c.Measurement.String() != c.Measurements["mrenclave"].String() {
				t.Errorf("measurement %s, want the MRENCLAVE", c.Measurement)
			}
			if got := c.Measurements["mrsigner"].String(); got != "feb995eb86c349ac98e5afbbb5732ca7376ec9979002702ea17ad476e0853a04" {
				t.Errorf("mrsigner %s", got)
			}
			if c.Debug {
				t.Error("x-ms-sgx-is-debuggable false reported as debug")
			}
			if c.Attributes["isvprodid"] != int64(1) {
				t.Errorf("isvprodid %v", c.Attributes["isvprodid"])
			}
			if c.Attributes["isvsvn"] != int64(8888) {
				t.Errorf("isvsvn %v", c.Attributes["isvsvn"])
			}
			if len(c.ReportData) != 64 {
				t.Errorf("report data has %d bytes, want 64", len(c.ReportData))
			}
			if c.Attributes["enclave_held_data"] != "010203040506" {
				t.Errorf("enclave held data %v", c.Attributes["enclave_held_data"])
			}
			checkPassed(t, c, "enclave-held-data-binding")
		}},
		{name: "sgx debug", claims: maaSGXClaims, edit: func(m map[string]any) {
			m["x-ms-sgx-is-debuggable"] = true
		}, check: func(t *testing.T, c *attest.Claims) {
			if !c.Debug {
				t.Error("x-ms-sgx-is-debuggable true not reported as debug")
			}
		}},
		{name: "sgx debug claim missing", claims: maaSGXClaims, edit: func(m map[string]any) {
			delete(m, "x-ms-sgx-is-debuggable")
		}, kind: attest.ErrMalformed, field: "x-ms-sgx-is-debuggable"},
		{name: "sgx short mrenclave", claims: maaSGXClaims, edit: func(m map[string]any) {
			m["x-ms-sgx-mrenclave"] = "d37d983a"
		}, kind: attest.ErrMalformed, field: "x-ms-sgx-mrenclave"},
		{name: "sgx mrenclave missing", claims: maaSGXClaims, edit: func(m map[string]any) {
			delete(m, "x-ms-sgx-mrenclave")
		}, kind: attest.ErrMalformed, field: "x-ms-sgx-mrenclave"},
		{name: "sgx held data binding broken", claims: maaSGXClaims, edit: func(m map[string]any) {
			m["x-ms-sgx-ehd"] = base64.RawURLEncoding.EncodeToString([]byte("other data"))
		}, kind: attest.ErrBinding, field: "x-ms-sgx-report-data"},
		{name: "sgx without held data", claims: maaSGXClaims, edit: func(m map[string]any) {
			delete(m, "x-ms-sgx-ehd")
		}, check: func(t *testing.T, c *attest.Claims) {
			ch, ok := c.FindCheck("enclave-held-data-binding")
			if !ok || ch.Result != attest.CheckNotChecked {
				t.Errorf("enclave-held-data-binding %+v (recorded %v), want not checked", ch, ok)
			}
		}},
		{name: "sgx product id not a number", claims: maaSGXClaims, edit: func(m map[string]any) {
			m["x-ms-sgx-product-id"] = "1"
		}, kind: attest.ErrMalformed, field: "x-ms-sgx-product-id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := tc.claims()
			if tc.edit != nil {
				tc.edit(claims)
			}
			c, err := verifyWith(t, MAA, s.sign(t, jose.RS256, claims, nil), set, tc.nonce)
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

// TestMAAAppraisal appraises the new token shapes with the default policy:
// production TDX and SGX tokens are accepted, debug ones and unmapped
// isolation TEEs rejected.
func TestMAAAppraisal(t *testing.T) {
	s := newService(t)
	opts := attest.Options{At: testNow, Collateral: setOf(t, s.jwks(t, "RS256"))}
	debugSGX := maaSGXClaims()
	debugSGX["x-ms-sgx-is-debuggable"] = true
	unknown := maaCVMTDXClaims()
	unknown["x-ms-isolation-tee"] = map[string]any{"x-ms-attestation-type": "futurevm"}
	cases := []struct {
		name   string
		claims map[string]any
		want   appraise.Verdict
	}{
		{"direct tdx", maaDirectTDXClaims(), appraise.Accept},
		{"cvm tdx", maaCVMTDXClaims(), appraise.Accept},
		{"sgx", maaSGXClaims(), appraise.Accept},
		{"debug sgx", debugSGX, appraise.Reject},
		{"unknown isolation tee", unknown, appraise.Reject},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := attest.Evidence{Format: "maa-token", Data: []byte(s.sign(t, jose.RS256, tc.claims, nil))}
			res := appraise.Evaluate(context.Background(), ev, opts, appraise.Options{})
			if res.Verdict != tc.want {
				t.Errorf("verdict %s (%v), want %s", res.Verdict, res.Error, tc.want)
			}
		})
	}
}

// TestMAASNPClaimSizes rejects an SEV-SNP token whose report data is not
// 64 bytes, whose host data is not 32 bytes or whose TCB component SVN is
// outside 0 to 255, the sizes of the SEV-SNP attestation report fields.
func TestMAASNPClaimSizes(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, "RS256"))
	cases := []struct {
		name, claim string
		value       any
		want        string
	}{
		{"short report data", "x-ms-sevsnpvm-reportdata", strings.Repeat("00", 10), "10 bytes"},
		{"long report data", "x-ms-sevsnpvm-reportdata", strings.Repeat("00", 65), "65 bytes"},
		{"short host data", "x-ms-sevsnpvm-hostdata", strings.Repeat("00", 31), "31 bytes"},
		{"negative microcode SVN", "x-ms-sevsnpvm-microcode-svn", -1, "-1"},
		{"microcode SVN over 255", "x-ms-sevsnpvm-microcode-svn", 256, "256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := maaClaims()
			claims["x-ms-isolation-tee"].(map[string]any)[tc.claim] = tc.value
			_, err := verifyWith(t, MAA, s.sign(t, jose.RS256, claims, nil), set, nil)
			expectRejected(t, err, attest.ErrMalformed, tc.claim, tc.want)
		})
	}
}

// Errors about the SEV-SNP claims nested in x-ms-isolation-tee name each
// claim by its full path and give a fix specific to the claim.
func TestMAASNPErrorsNamePath(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, "RS256"))
	cases := []struct {
		name, claim string
		value       any
		want        []string
	}{
		{"debug not a boolean", "x-ms-sevsnpvm-is-debuggable", "false", nil},
		{"measurement not hex", "x-ms-sevsnpvm-launchmeasurement", "xyz", nil},
		{"report data not hex", "x-ms-sevsnpvm-reportdata", "xyz", []string{"not hexadecimal", "the claim is a string of hexadecimal digits"}},
		{"host data too short", "x-ms-sevsnpvm-hostdata", strings.Repeat("00", 31), []string{"31 bytes"}},
		{"SVN not a number", "x-ms-sevsnpvm-tee-svn", "1", []string{"want a number", "each SVN is an integer"}},
		{"SVN over 255", "x-ms-sevsnpvm-microcode-svn", 256, []string{"256"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := maaClaims()
			claims["x-ms-isolation-tee"].(map[string]any)[tc.claim] = tc.value
			_, err := verifyWith(t, MAA, s.sign(t, jose.RS256, claims, nil), set, nil)
			expectRejected(t, err, attest.ErrMalformed, append([]string{"x-ms-isolation-tee." + tc.claim}, tc.want...)...)
			if !strings.Contains(err.Error(), "pass the token as") {
				t.Errorf("error %q does not name the fix", err)
			}
			if strings.Contains(err.Error(), "check that the file is the evidence itself") {
				t.Errorf("error %q gives the generic fix", err)
			}
		})
	}
}
