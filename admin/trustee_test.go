package admin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// trusteeResourcePolicy is a resource policy written for Trustee: it reads
// the claims at input.submods and tests data.plugin.
const trusteeResourcePolicy = `package policy

import rego.v1

default allow := false

# release resource-plugin objects only to an affirming CPU appraisal
allow if {
	data.plugin == "resource"
	input.submods.cpu0["ear.status"] == "affirming"
}
`

// trusteeDefaultResourcePolicy has the rule of Trustee's default resource
// policy: any resource to any TEE but the sample attester.
const trusteeDefaultResourcePolicy = `package policy

default allow := false

allow if {
	data.plugin == "resource"
	not input.submods.cpu0["ear.veraison.annotated-evidence"].sample
}
`

// trusteeSNPPathPolicy releases resources outside the "denied" repository
// to a guest whose CPU evidence is SEV-SNP, reading Trustee's request data.
const trusteeSNPPathPolicy = `package policy

default allow := false

allow if {
	data.plugin == "resource"
	data["resource-path"][0] != "denied"
	input.submods.cpu0["ear.veraison.annotated-evidence"].snp
}
`

// mixedResourcePolicy reads both Trustee's and Cloister's input.
const mixedResourcePolicy = `package policy

allow if {
	input.submods.cpu0["ear.status"] == "affirming"
	input.token.submods.cpu0["ear.status"] == "affirming"
}
`

// trusteeAttestationPolicy is an attestation policy written for Trustee:
// it defines trust_claims and no deny.
const trusteeAttestationPolicy = `package policy

import rego.v1

default hardware := 97
default configuration := 36
default executables := 33

hardware := 2 if input.sample
configuration := 2 if input.sample.debug == false
executables := 3 if input.sample

trust_claims := {
	"hardware": hardware,
	"configuration": configuration,
	"executables": executables,
}
`

// cloisterResourcePolicy releases only secrets outside the "denied"
// repository, to an affirming CPU appraisal.
const cloisterResourcePolicy = `package cloister.resource

default allow := false

allow if {
	input.token.submods.cpu0["ear.status"] == "affirming"
	input.resource.repository != "denied"
}
`

// cloisterAttestationPolicy rejects debug TEEs and nothing else.
const cloisterAttestationPolicy = `package cloister.attestation

deny contains {"rule": "debug", "claim": "debug", "value": true, "expected": false, "message": "debug TEE"} if input.claims.debug
`

// Two SEV-SNP measurements (48 bytes) in the form the store keeps.
var (
	measurementA = strings.Repeat("a1", 48)
	measurementB = strings.Repeat("b2", 48)
)

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// call sends one request to the broker and returns the status and body.
// An empty key sends no Authorization header.
func call(t *testing.T, b *workloadtest.Broker, method, path, key, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func postJSON(t *testing.T, b *workloadtest.Broker, path string, v any) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return call(t, b, http.MethodPost, path, workloadtest.AdminKey, "application/json", body)
}

// expectOK checks for Trustee's success response: 200 with an empty body.
func expectOK(t *testing.T, status int, body []byte) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", status, body)
	}
	if len(body) != 0 {
		t.Errorf("body = %q, want empty", body)
	}
}

// expectProblem checks for a 401 Trustee problem of variant whose detail
// contains each of words.
func expectProblem(t *testing.T, status int, body []byte, variant string, words ...string) {
	t.Helper()
	if status != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401; body %s", status, body)
	}
	p, err := kbs.ParseProblem(status, body)
	if err != nil {
		t.Fatal(err)
	}
	if p.Variant() != variant {
		t.Errorf("problem type = %q, want %q (detail %q)", p.Type, kbs.ProblemTypePrefix+variant, p.Detail)
	}
	for _, w := range words {
		if !strings.Contains(p.Detail, w) {
			t.Errorf("detail %q does not contain %q", p.Detail, w)
		}
	}
}

func TestTrusteeResourceReleasedAndDeleted(t *testing.T) {
	ctx := context.Background()
	tee := workloadtest.OpenEmulatedTEE(t, workload.Digest{}, workloadtest.Measurement("trustee-admin"))
	b := workloadtest.StartBroker(t, tee.Emulator)

	status, body := call(t, b, http.MethodPost, "/kbs/v0/resource/default/key/1", workloadtest.AdminKey,
		"application/octet-stream", []byte("example secret bytes"))
	expectOK(t, status, body)

	got, err := b.KBSClient(t, tee.Attester).Resource(ctx, "default/key/1")
	if err != nil {
		t.Fatalf("release to the emulated TEE: %v", err)
	}
	if string(got) != "example secret bytes" {
		t.Errorf("released %q, want %q", got, "example secret bytes")
	}

	audit, err := b.Admin.ListAudit(ctx, store.AuditQuery{Action: store.AuditAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if !hasAudit(audit, "default/key/1", "put secret version 1") {
		t.Errorf("no admin audit record of the put in %+v", audit)
	}

	status, body = call(t, b, http.MethodDelete, "/kbs/v0/resource/default/key/1", workloadtest.AdminKey, "", nil)
	expectOK(t, status, body)
	list, err := b.Admin.ListSecrets(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("secrets after DELETE = %+v, want none", list)
	}

	status, body = call(t, b, http.MethodDelete, "/kbs/v0/resource/default/key/1", workloadtest.AdminKey, "", nil)
	expectProblem(t, status, body, kbs.ProblemPluginInternalError, "not found")
}

func TestTrusteeResourceInvalidPath(t *testing.T) {
	b := workloadtest.StartBroker(t)
	status, body := call(t, b, http.MethodPost, "/kbs/v0/resource/default/key", workloadtest.AdminKey,
		"application/octet-stream", []byte("x"))
	expectProblem(t, status, body, kbs.ProblemPluginInternalError, "default/key")
}

func hasAudit(list []store.AuditRecord, resource, reason string) bool {
	for _, r := range list {
		if r.Resource == resource && strings.Contains(r.Reason, reason) && r.Requester == "api-key" {
			return true
		}
	}
	return false
}

func TestTrusteeResourcePolicy(t *testing.T) {
	ctx := context.Background()
	tee := workloadtest.OpenEmulatedTEE(t, workload.Digest{}, workloadtest.Measurement("trustee-admin"))
	b := workloadtest.StartBroker(t, tee.Emulator)

	status, body := postJSON(t, b, "/kbs/v0/resource-policy", map[string]string{"policy": base64URL(cloisterResourcePolicy)})
	expectOK(t, status, body)
	p, err := b.Admin.GetPolicy(ctx, store.PolicyResource, "default")
	if err != nil {
		t.Fatal(err)
	}
	if p.Module != cloisterResourcePolicy {
		t.Errorf("stored module = %q, want the uploaded one", p.Module)
	}

	// The policy now governs releases.
	for _, path := range []string{"default/key/1", "denied/key/1"} {
		if _, err := b.Admin.PutSecret(ctx, path, []byte("value")); err != nil {
			t.Fatal(err)
		}
	}
	client := b.KBSClient(t, tee.Attester)
	if _, err := client.Resource(ctx, "default/key/1"); err != nil {
		t.Errorf("release of default/key/1: %v", err)
	}
	if _, err := client.Resource(ctx, "denied/key/1"); err == nil {
		t.Error("release of denied/key/1 succeeded; the stored policy denies the repository")
	}
}

func TestTrusteeShapedResourcePolicy(t *testing.T) {
	ctx := context.Background()
	tee := workloadtest.OpenEmulatedTEE(t, workload.Digest{}, workloadtest.Measurement("trustee-admin"))
	b := workloadtest.StartBroker(t, tee.Emulator)
	for _, path := range []string{"default/key/1", "denied/key/1"} {
		if _, err := b.Admin.PutSecret(ctx, path, []byte("value")); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		module  string
		allowed map[string]bool
	}{
		{"trustee default", trusteeDefaultResourcePolicy, map[string]bool{"default/key/1": true, "denied/key/1": true}},
		{"trustee affirming", trusteeResourcePolicy, map[string]bool{"default/key/1": true}},
		{"trustee resource path", trusteeSNPPathPolicy, map[string]bool{"default/key/1": true, "denied/key/1": false}},
		{"allow false", "package policy\n\nallow := false\n", map[string]bool{"default/key/1": false}},
		{"trustee allow false", "package policy\n\nallow := false if data.plugin == \"resource\"\n", map[string]bool{"default/key/1": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postJSON(t, b, "/kbs/v0/resource-policy", map[string]string{"policy": base64URL(tt.module)})
			expectOK(t, status, body)

			// A new client attests again, so each policy evaluates a fresh token.
			client := b.KBSClient(t, tee.Attester)
			for path, want := range tt.allowed {
				got, err := client.Resource(ctx, path)
				if want && (err != nil || string(got) != "value") {
					t.Errorf("release of %s = %q, %v; want the value", path, got, err)
				}
				var p *kbs.Problem
				if !want && (!errors.As(err, &p) || p.Variant() != kbs.ProblemPolicyDeny) {
					t.Errorf("release of %s: error %v, want a PolicyDeny problem", path, err)
				}
			}
		})
	}
}

func TestTrusteeResourcePolicyRejected(t *testing.T) {
	ctx := context.Background()
	b := workloadtest.StartBroker(t)
	tests := []struct {
		name  string
		body  string
		words []string
	}{
		{"both inputs", `{"policy":"` + base64URL(mixedResourcePolicy) + `"}`, []string{"input.submods", "input.token"}},
		{"padded base64", `{"policy":"` + base64.URLEncoding.EncodeToString([]byte("package p\n\nallow := true\n")) + `"}`, []string{"base64url"}},
		{"not rego", `{"policy":"` + base64URL("package p\nallow if {") + `"}`, []string{"parse"}},
		{"no allow rule", `{"policy":"` + base64URL("package p\nok := true\n") + `"}`, []string{"allow"}},
		{"missing policy", `{}`, []string{"missing"}},
		{"malformed JSON", `{"policy":`, []string{"JSON"}},
		{"unknown member", `{"policy":"` + base64URL(cloisterResourcePolicy) + `","extra":1}`, []string{"extra"}},
		{"repeated member", `{"policy":"` + base64URL(cloisterResourcePolicy) + `","policy":"` + base64URL(cloisterResourcePolicy) + `"}`, []string{"duplicate member", `"policy"`}},
		{"member in capitals", `{"POLICY":"` + base64URL(cloisterResourcePolicy) + `"}`, []string{`"POLICY"`, "case-sensitive"}},
		{"closing bracket after object", `{"policy":"` + base64URL(cloisterResourcePolicy) + `"}]`, []string{"after the JSON object"}},
		{"second object", `{"policy":"` + base64URL(cloisterResourcePolicy) + `"}{}`, []string{"after the JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, b, http.MethodPost, "/kbs/v0/resource-policy", workloadtest.AdminKey, "application/json", []byte(tt.body))
			expectProblem(t, status, body, "ParsePolicyError", tt.words...)
		})
	}
	if list, err := b.Admin.ListPolicies(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("policies after rejected uploads = %+v, %v; want none", list, err)
	}
}

func TestTrusteeAttestationPolicy(t *testing.T) {
	ctx := context.Background()
	b := workloadtest.StartBroker(t)

	status, body := postJSON(t, b, "/kbs/v0/attestation-policy",
		map[string]string{"type": "rego", "policy_id": "snp", "policy": base64URL(cloisterAttestationPolicy)})
	expectOK(t, status, body)
	p, err := b.Admin.GetPolicy(ctx, store.PolicyAttestation, "snp")
	if err != nil {
		t.Fatal(err)
	}
	if p.Module != cloisterAttestationPolicy {
		t.Errorf("stored module = %q, want the uploaded one", p.Module)
	}
	audit, err := b.Admin.ListAudit(ctx, store.AuditQuery{Action: store.AuditAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if !hasAudit(audit, "policy:attestation/snp", "set policy version 1") {
		t.Errorf("no admin audit record of the policy in %+v", audit)
	}
}

func TestTrusteeAttestationPolicyRejected(t *testing.T) {
	ctx := context.Background()
	b := workloadtest.StartBroker(t)
	tests := []struct {
		name     string
		policyID string
		module   string
		words    []string
	}{
		{"trustee policy id", "default_cpu", cloisterAttestationPolicy, []string{"default_cpu", "snp"}},
		{"trust_claims policy", "snp", trusteeAttestationPolicy, []string{"deny"}},
		{"not rego", "tdx", "package p\ndeny contains x if {", []string{"tdx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postJSON(t, b, "/kbs/v0/attestation-policy",
				map[string]string{"type": "rego", "policy_id": tt.policyID, "policy": base64URL(tt.module)})
			expectProblem(t, status, body, kbs.ProblemAttestationError, tt.words...)
		})
	}
	if list, err := b.Admin.ListPolicies(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("policies after rejected uploads = %+v, %v; want none", list, err)
	}

	// Each rejected upload is recorded with the detail the client got.
	audit, err := b.Admin.ListAudit(ctx, store.AuditQuery{Action: store.AuditAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != len(tests) {
		t.Fatalf("admin audit records = %+v, want one per rejected upload", audit)
	}
	for i, rec := range audit {
		if rec.Verdict != "rejected" || rec.Resource != "POST /kbs/v0/attestation-policy" || rec.Requester != "api-key" {
			t.Errorf("record %d = %+v, want a rejected POST /kbs/v0/attestation-policy by api-key", i, rec)
		}
		if !strings.Contains(rec.Reason, tests[i].words[0]) {
			t.Errorf("record %d reason = %q, want it to contain %q", i, rec.Reason, tests[i].words[0])
		}
	}
}

func TestTrusteeReferenceValue(t *testing.T) {
	ctx := context.Background()
	b := workloadtest.StartBroker(t)

	// Trustee's sample provenance: standard base64 of {"sample.svn":["1"]}.
	status, body := postJSON(t, b, "/kbs/v0/reference-value",
		map[string]string{"version": "0.1.0", "type": "sample", "payload": "eyJzYW1wbGUuc3ZuIjpbIjEiXX0="})
	expectOK(t, status, body)
	list, err := b.Admin.ListReferenceValues(ctx, "sample.svn")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Value != "1" {
		t.Errorf("reference values of sample.svn = %+v, want the one value 1", list)
	}

	// Hex values are stored in lower case, as on /admin/v0.
	payload := base64.StdEncoding.EncodeToString([]byte(`{"snp.measurement":["` + strings.ToUpper(measurementA) + `","` + measurementB + `"]}`))
	status, body = postJSON(t, b, "/kbs/v0/reference-value",
		map[string]string{"version": "0.1.0", "type": "sample", "payload": payload})
	expectOK(t, status, body)
	list, err = b.Admin.ListReferenceValues(ctx, "snp.measurement")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Value != measurementA || list[1].Value != measurementB {
		t.Errorf("reference values of snp.measurement = %+v, want %s and %s", list, measurementA, measurementB)
	}

	// kbs-client --as-integer --as-single-value and --as-bool send scalars.
	payload = base64.StdEncoding.EncodeToString([]byte(`{"sgx.isvsvn":7,"sgx.flag":[true]}`))
	status, body = postJSON(t, b, "/kbs/v0/reference-value",
		map[string]string{"version": "0.1.0", "type": "sample", "payload": payload})
	expectOK(t, status, body)
	for name, want := range map[string]string{"sgx.isvsvn": "7", "sgx.flag": "true"} {
		list, err := b.Admin.ListReferenceValues(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Value != want {
			t.Errorf("reference values of %s = %+v, want the one value %s", name, list, want)
		}
	}
}

func TestTrusteeReferenceValueRejected(t *testing.T) {
	ctx := context.Background()
	b := workloadtest.StartBroker(t)
	encode := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name  string
		body  map[string]string
		words []string
	}{
		{"wrong version", map[string]string{"version": "0.2.0", "type": "sample", "payload": encode(`{"svn":["1"]}`)}, []string{"0.2.0"}},
		{"other extractor", map[string]string{"version": "0.1.0", "type": "in-toto", "payload": encode(`{"svn":["1"]}`)}, []string{"in-toto"}},
		{"not base64", map[string]string{"version": "0.1.0", "type": "sample", "payload": "!!"}, []string{"base64"}},
		{"not sample JSON", map[string]string{"version": "0.1.0", "type": "sample", "payload": encode(`["svn"]`)}, []string{"JSON object"}},
		{"object value", map[string]string{"version": "0.1.0", "type": "sample", "payload": encode(`{"svn":{"a":1}}`)}, []string{"svn", "not a string"}},
		{"null value", map[string]string{"version": "0.1.0", "type": "sample", "payload": encode(`{"svn":[null]}`)}, []string{"svn", "null"}},
		{"no values", map[string]string{"version": "0.1.0", "type": "sample", "payload": encode(`{"svn":[]}`)}, []string{"svn"}},
		{"invalid name", map[string]string{"version": "0.1.0", "type": "sample", "payload": encode(`{"sample.a b":["1"]}`)}, []string{"a b"}},
		{"name without TEE", map[string]string{"version": "0.1.0", "type": "sample", "payload": encode(`{"svn":["1"]}`)}, []string{`"svn"`, "<tee>.<claim>", "snp, tdx"}},
		{"unknown TEE", map[string]string{"version": "0.1.0", "type": "sample", "payload": encode(`{"tcb.svn":["1"]}`)}, []string{`"tcb"`, "not a known TEE"}},
		{"measurement not hex", map[string]string{"version": "0.1.0", "type": "sample", "payload": encode(`{"snp.measurement":["nothex"]}`)}, []string{"snp.measurement", `"nothex"`, "96 hex digits"}},
		{"one invalid value of several", map[string]string{"version": "0.1.0", "type": "sample", "payload": encode(`{"sample.svn":["1"],"snp.measurement":["` + measurementA + `","aa"]}`)}, []string{"snp.measurement", `"aa"`}},
		{"repeated name", map[string]string{"version": "0.1.0", "type": "sample", "payload": encode(`{"snp.measurement":["` + measurementA + `"],"snp.measurement":["` + measurementB + `"]}`)}, []string{"duplicate member", `"snp.measurement"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postJSON(t, b, "/kbs/v0/reference-value", tt.body)
			expectProblem(t, status, body, "RvpsError", tt.words...)
		})
	}
	if list, err := b.Admin.ListReferenceValues(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("reference values after rejected uploads = %+v, %v; want none", list, err)
	}
}

// expectJSON checks for a 200 response whose JSON body decodes to want.
func expectJSON(t *testing.T, status int, body []byte, want []string) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", status, body)
	}
	var got []string
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %s is not a JSON array of strings: %v", body, err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func TestTrusteeListResourcePolicies(t *testing.T) {
	ctx := context.Background()
	b := workloadtest.StartBroker(t)

	// The built-in default is listed before any upload.
	status, body := call(t, b, http.MethodGet, "/kbs/v0/resource-policy", workloadtest.AdminKey, "", nil)
	expectJSON(t, status, body, []string{"default"})

	status, body = postJSON(t, b, "/kbs/v0/resource-policy", map[string]string{"policy": base64URL(cloisterResourcePolicy)})
	expectOK(t, status, body)
	if _, err := b.Admin.SetPolicy(ctx, store.PolicyResource, "staging", cloisterResourcePolicy); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Admin.SetPolicy(ctx, store.PolicyAttestation, "snp", cloisterAttestationPolicy); err != nil {
		t.Fatal(err)
	}
	status, body = call(t, b, http.MethodGet, "/kbs/v0/resource-policy", workloadtest.AdminKey, "", nil)
	expectJSON(t, status, body, []string{"default", "staging"})
}

func TestTrusteeGetReferenceValue(t *testing.T) {
	b := workloadtest.StartBroker(t)
	payload := base64.StdEncoding.EncodeToString([]byte(`{"sample.svn":["1"],"snp.measurement":["` + measurementB + `","` + measurementA + `"],"sgx.isvsvn":7}`))
	status, body := postJSON(t, b, "/kbs/v0/reference-value",
		map[string]string{"version": "0.1.0", "type": "sample", "payload": payload})
	expectOK(t, status, body)

	tests := []struct {
		id   string
		want []string
	}{
		{"sample.svn", []string{"1"}},
		{"snp.measurement", []string{measurementA, measurementB}},
		{"sgx.isvsvn", []string{"7"}},
	}
	for _, tt := range tests {
		status, body := call(t, b, http.MethodGet, "/kbs/v0/reference-value/"+tt.id, workloadtest.AdminKey, "", nil)
		expectJSON(t, status, body, tt.want)
	}

	for _, id := range []string{"unknown", "a/b/c", ""} {
		status, body := call(t, b, http.MethodGet, "/kbs/v0/reference-value/"+id, workloadtest.AdminKey, "", nil)
		expectProblem(t, status, body, "RvpsError", "No reference value found for the given id: "+id)
	}
}

func TestTrusteeAdminUnauthenticated(t *testing.T) {
	ctx := context.Background()
	b := workloadtest.StartBroker(t)
	requests := []struct {
		method, path, variant string
		body                  string
	}{
		{http.MethodPost, "/kbs/v0/resource/default/key/1", "AdminAuthInitialization", "example secret bytes"},
		{http.MethodDelete, "/kbs/v0/resource/default/key/1", "AdminAuthInitialization", ""},
		{http.MethodPost, "/kbs/v0/resource-policy", kbs.ProblemAdminAuthAccess, `{"policy":"` + base64URL(cloisterResourcePolicy) + `"}`},
		{http.MethodPost, "/kbs/v0/attestation-policy", kbs.ProblemAdminAuthAccess,
			`{"type":"rego","policy_id":"snp","policy":"` + base64URL(cloisterAttestationPolicy) + `"}`},
		{http.MethodPost, "/kbs/v0/reference-value", kbs.ProblemAdminAuthAccess,
			`{"version":"0.1.0","type":"sample","payload":"eyJzdm4iOlsiMSJdfQ=="}`},
		{http.MethodGet, "/kbs/v0/resource-policy", kbs.ProblemAdminAuthAccess, ""},
		{http.MethodGet, "/kbs/v0/reference-value/svn", kbs.ProblemAdminAuthAccess, ""},
	}
	for _, key := range []string{"", "wrong-admin-key-0123456789abcdef"} {
		for _, r := range requests {
			t.Run(r.method+" "+r.path, func(t *testing.T) {
				status, body := call(t, b, r.method, r.path, key, "", []byte(r.body))
				expectProblem(t, status, body, r.variant, "admin key")
			})
		}
	}

	secrets, err := b.Admin.ListSecrets(ctx, "")
	if err != nil || len(secrets) != 0 {
		t.Errorf("secrets = %+v, %v; want none", secrets, err)
	}
	policies, err := b.Admin.ListPolicies(ctx, "")
	if err != nil || len(policies) != 0 {
		t.Errorf("policies = %+v, %v; want none", policies, err)
	}
	values, err := b.Admin.ListReferenceValues(ctx, "")
	if err != nil || len(values) != 0 {
		t.Errorf("reference values = %+v, %v; want none", values, err)
	}
	audit, err := b.Admin.ListAudit(ctx, store.AuditQuery{Action: store.AuditAdmin})
	if err != nil || len(audit) != 0 {
		t.Errorf("admin audit records = %+v, %v; want none", audit, err)
	}
}

func TestTrusteeGuestResourceUnchanged(t *testing.T) {
	b := workloadtest.StartBroker(t)
	// A guest without a session still gets the KBS's TokenNotFound
	// problem, not an admin authentication failure.
	status, body := call(t, b, http.MethodGet, "/kbs/v0/resource/default/key/1", "", "", nil)
	expectProblem(t, status, body, kbs.ProblemTokenNotFound)
}

func TestTrusteeBodyLimit(t *testing.T) {
	b := workloadtest.StartBroker(t)
	status, body := call(t, b, http.MethodPost, "/kbs/v0/resource/default/key/big", workloadtest.AdminKey,
		"application/octet-stream", make([]byte, 2<<20))
	expectProblem(t, status, body, kbs.ProblemSerdeError, "limit")
}
