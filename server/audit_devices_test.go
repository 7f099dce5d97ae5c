package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// devicesOfToken returns the audit Devices text that the token's gpu0
// submodule calls for, built from the submodule's key claims, digests and
// status, read without checking the signature. It fails the test when
// the submodule lacks a digest.
func devicesOfToken(t *testing.T, token string) string {
	t.Helper()
	gpu0 := unverifiedSubmod(t, token, "gpu0")
	keyClaims, _ := gpu0["cloister.key-claims"].(map[string]any)
	digests, _ := gpu0["cloister.digests"].(map[string]any)
	tee, _ := keyClaims["tee"].(string)
	evidence, _ := digests["evidence"].(string)
	policy, _ := digests["policy"].(string)
	status, _ := gpu0["ear.status"].(string)
	if tee == "" || len(evidence) != 64 || len(policy) != 64 || status == "" {
		t.Fatalf("token's gpu0 submodule has tee %q, evidence digest %q, policy digest %q, status %q; want all four",
			tee, evidence, policy, status)
	}
	devices := "gpu0 " + tee + " evidence=" + evidence + " policy=" + policy + " status=" + status
	if keyClaims["emulated"] == true {
		devices += " emulated"
	}
	return devices
}

// cpuEvidenceDigest returns the evidence digest of the token's cpu0
// submodule, read without checking the signature.
func cpuEvidenceDigest(t *testing.T, token string) string {
	t.Helper()
	cpu0 := unverifiedSubmod(t, token, "cpu0")
	digests, _ := cpu0["cloister.digests"].(map[string]any)
	evidence, _ := digests["evidence"].(string)
	return evidence
}

// attestLogLine returns the "kbs attest" log line of the token with ID id.
// The service writes it after the response, so it may arrive later.
func attestLogLine(t *testing.T, logs *logBuffer, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(deadlineBound)
	for {
		for _, line := range logs.lines(t) {
			if line["msg"] == "kbs attest" && line["token_id"] == id {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no kbs attest log line with token_id %q in:\n%s", id, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An emulated SEV-SNP guest attests with two emulated GPUs over HTTP on
// loopback. The attest audit record lists gpu0 with the evidence digest,
// policy digest and status of the token's gpu0 submodule, as do the kbs
// attest log line and the admin API's audit listing, and the chain still
// verifies. A CPU-only attestation lists no devices.
func TestAuditRecordsCompositeDevices(t *testing.T) {
	gpu := newGPUEmulator(t, 2)
	adminHandler := adminForTest(t)
	tests := []struct {
		name    string
		devices bool
		// rims gives the service the GPUs' RIMs, without which the
		// default nvidia-gpu policy contraindicates them.
		rims       bool
		wantStatus ear.Status
	}{
		{name: "affirmed GPUs", devices: true, rims: true, wantStatus: ear.StatusAffirming},
		{name: "contraindicated GPUs", devices: true, rims: false, wantStatus: ear.StatusContraindicated},
		{name: "CPU only", devices: false, rims: true, wantStatus: ear.StatusAffirming},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				opts := gpuServiceOptions(t, gpu, tc.rims)
				opts.admin = adminHandler
				ts, logs := startLogged(t, startService(t, b, opts), nil)

				c := ts.newClient(t, "good")
				if tc.devices {
					c.Devices = []attest.Attester{gpu}
				}
				token, err := c.Attest(ctx)
				if err != nil {
					t.Fatalf("Attest: %v", err)
				}
				id := tokenID(t, token)
				want := ""
				if tc.devices {
					want = devicesOfToken(t, token)
				}

				recs, err := ts.store.ListAudit(ctx, store.AuditQuery{Action: store.AuditAttest, TokenID: id})
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) != 1 {
					t.Fatalf("audit log has %d attest records of token %s, want 1: %+v", len(recs), id, recs)
				}
				rec := recs[0]
				if rec.Devices != want {
					t.Errorf("attest record devices =\n%q\nwant\n%q", rec.Devices, want)
				}
				if rec.Verdict != string(tc.wantStatus) {
					t.Errorf("attest record verdict %q, want %q", rec.Verdict, tc.wantStatus)
				}
				if got := cpuEvidenceDigest(t, token); rec.EvidenceDigest != got {
					t.Errorf("attest record evidence digest %q, want the cpu0 digest %q", rec.EvidenceDigest, got)
				}

				line := attestLogLine(t, logs, id)
				got, ok := line["devices"]
				if tc.devices && got != want {
					t.Errorf("kbs attest log line devices = %v, want %q", got, want)
				}
				if !tc.devices && ok {
					t.Errorf("kbs attest log line of a CPU-only attestation has devices %v", got)
				}

				checkAdminAuditDevices(t, ts, id, want)
			})
		}
	})
}

// checkAdminAuditDevices checks that the admin API lists the attest record
// of token id with devices want, in the client's records and in the JSON
// member "devices", and that the admin API verifies the chain.
func checkAdminAuditDevices(t *testing.T, ts *testService, id, want string) {
	t.Helper()
	ctx := context.Background()
	const apiKey = "test-admin-key-0123456789abcdef"
	client := &admin.Client{BaseURL: ts.URL, APIKey: apiKey, HTTPClient: ts.Client()}
	recs, err := client.ListAudit(ctx, store.AuditQuery{Action: store.AuditAttest, TokenID: id})
	if err != nil {
		t.Fatalf("admin ListAudit: %v", err)
	}
	if len(recs) != 1 {
		t.Fatalf("admin API lists %d attest records of token %s, want 1: %+v", len(recs), id, recs)
	}
	if recs[0].Devices != want {
		t.Errorf("admin API lists devices %q, want %q", recs[0].Devices, want)
	}

	resp := get(t, ts, admin.PathPrefix+"audit?action=attest&token_id="+id, apiKey)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET audit?token_id=%s: read body: %v", id, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET audit?token_id=%s: status %s, want 200: %s", id, resp.Status, body)
	}
	var list struct {
		Records []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("decode audit listing %s: %v", body, err)
	}
	if len(list.Records) != 1 {
		t.Fatalf("GET audit?token_id=%s returned %d records, want 1: %s", id, len(list.Records), body)
	}
	got, ok := list.Records[0]["devices"]
	if want != "" && got != want {
		t.Errorf("audit listing JSON has devices %v, want %q", got, want)
	}
	if want == "" && ok {
		t.Errorf("audit listing JSON of a CPU-only attestation has devices %v, want the member left out", got)
	}

	verification, err := client.VerifyAudit(ctx)
	if err != nil {
		t.Fatalf("admin VerifyAudit: %v", err)
	}
	if verification.Broken != nil {
		t.Errorf("admin VerifyAudit = %+v, want an intact chain", verification)
	}
	if verification.Records == 0 {
		t.Errorf("admin VerifyAudit = %+v, want verified records", verification)
	}
}

// A GPU whose evidence binds another nonce gets the attestation rejected,
// and the deny record names the GPU with the digest of its evidence.
func TestAuditDenyNamesRejectedDevice(t *testing.T) {
	gpu := newGPUEmulator(t, 1)
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := gpuService(t, b, gpu, true)
		c := ts.newClient(t, "good")
		c.Devices = []attest.Attester{otherNonceGPU{gpu}}
		_, err := c.Attest(context.Background())
		wantProblem(t, err, kbs.ProblemAttestationError, 401)

		rec := auditRecordOf(t, ts.store, store.AuditDeny)
		if !strings.HasPrefix(rec.Devices, "gpu0 nvidia-gpu evidence=") {
			t.Errorf("deny record devices %q, want gpu0 nvidia-gpu with its evidence digest", rec.Devices)
		}
		if !strings.HasSuffix(rec.Devices, " status=rejected") {
			t.Errorf("deny record devices %q, want status=rejected", rec.Devices)
		}
		digest := strings.TrimSuffix(strings.TrimPrefix(rec.Devices, "gpu0 nvidia-gpu evidence="), " status=rejected")
		if len(digest) != 64 {
			t.Errorf("deny record device evidence digest %q is not a hex SHA-256", digest)
		}
		if !strings.Contains(rec.Reason, "device nvidia") {
			t.Errorf("deny record reason %q does not name the device", rec.Reason)
		}
	})
}
