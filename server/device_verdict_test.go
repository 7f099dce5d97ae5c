package server

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// A composite of SEV-SNP evidence that passes and a sample device, which
// the default attestation policy rejects, gets no secret, even from a
// resource policy that allows everything. The attestation is recorded as
// contraindicated with the device's reasons. Once an attestation policy
// accepts sample evidence, the same composite gets the secret, and the
// release record names the evidence and the resource policy.
func TestRejectedDeviceBlocksRelease(t *testing.T) {
	tests := []struct {
		name               string
		samplePolicy       string
		wantDeviceStatus   ear.Status
		wantAttestVerdict  string
		wantRelease        bool
		wantResourceAction store.AuditAction
	}{
		{"device rejected", "", ear.StatusContraindicated, "contraindicated", false, store.AuditDeny},
		{"device accepted", "package accept_sample\ndeny := set()\n", ear.StatusAffirming, "affirming", true, store.AuditRelease},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ts := startService(t, b, serviceOptions{allowEmulated: true})
				ctx := context.Background()
				if _, err := ts.store.PutPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName,
					"package permissive\nallow := true\n"); err != nil {
					t.Fatal(err)
				}
				if tt.samplePolicy != "" {
					if _, err := ts.store.PutPolicy(ctx, store.PolicyAttestation, "sample", tt.samplePolicy); err != nil {
						t.Fatal(err)
					}
				}

				jar, _ := cookiejar.New(nil)
				key, body := compositeBody(t, auth(t, ts, jar))
				resp := post(t, ts, jar, "/kbs/v0/attest", body)
				if resp.StatusCode != http.StatusOK {
					msg, _ := io.ReadAll(resp.Body)
					t.Fatalf("attest: %s %s", resp.Status, msg)
				}
				var tok kbs.AttestationToken
				if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
					t.Fatal(err)
				}
				statuses := submodStatuses(t, tok.Token)
				if statuses["cpu0"] != ear.StatusAffirming {
					t.Errorf("cpu0 ear.status = %s, want affirming", statuses["cpu0"])
				}
				if statuses["gpu0"] != tt.wantDeviceStatus {
					t.Errorf("gpu0 ear.status = %s, want %s", statuses["gpu0"], tt.wantDeviceStatus)
				}

				resp = getWithJar(t, ts, jar, "/kbs/v0/resource/"+testSecretPath)
				if tt.wantRelease {
					wantSecret(t, resp, key)
				} else {
					detail := wantProblemResponse(t, resp, kbs.ProblemPolicyDeny, http.StatusUnauthorized)
					if strings.Contains(detail, string(testSecret)) {
						t.Error("the denial carries the secret")
					}
				}

				checkCompositeAudit(t, ts, tt.wantAttestVerdict, tt.wantResourceAction)
			})
		}
	})
}

// checkCompositeAudit checks the attest record and the resource record of
// one composite round trip.
func checkCompositeAudit(t *testing.T, ts *testService, wantVerdict string, resourceAction store.AuditAction) {
	t.Helper()
	attestRec := auditRecordOf(t, ts.store, store.AuditAttest)
	if attestRec.Verdict != wantVerdict {
		t.Errorf("attest record verdict = %q, want %q", attestRec.Verdict, wantVerdict)
	}
	if wantVerdict == "contraindicated" && !strings.Contains(attestRec.Reason, "gpu0: test-key") {
		t.Errorf("attest record reason %q does not name the device's failed rule", attestRec.Reason)
	}
	if attestRec.EvidenceDigest == "" {
		t.Error("attest record has no evidence digest")
	}

	rec := auditRecordOf(t, ts.store, resourceAction)
	if rec.Resource != testSecretPath {
		t.Errorf("%s record resource = %q, want %q", resourceAction, rec.Resource, testSecretPath)
	}
	if rec.EvidenceDigest != attestRec.EvidenceDigest {
		t.Errorf("%s record evidence digest = %q, want the attest record's %q", resourceAction, rec.EvidenceDigest, attestRec.EvidenceDigest)
	}
	if resourceAction == store.AuditRelease && len(rec.PolicyDigest) != 64 {
		t.Errorf("release record policy digest = %q, want the resource policy's hex SHA-256", rec.PolicyDigest)
	}
	if resourceAction == store.AuditDeny && !strings.Contains(rec.Reason, "appraisal gpu0 is \"contraindicated\"") {
		t.Errorf("deny record reason %q does not name the rejected appraisal", rec.Reason)
	}
}

// compositeBody returns a new TEE key and an /attest body for nonce with
// SEV-SNP evidence from the good emulator and a sample device report, each
// bound to its runtime data.
func compositeBody(t *testing.T, nonce string) (crypto.PrivateKey, string) {
	t.Helper()
	key, err := kbs.GenerateKey("P-256")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kbs.PublicKeyJWK(key)
	if err != nil {
		t.Fatal(err)
	}

	deviceDigest, err := kbs.DeviceDigest(kbs.DefaultHash, nonce, pub)
	if err != nil {
		t.Fatal(err)
	}
	device := sampleDeviceEvidence(deviceDigest)

	digest, err := kbs.PrimaryDigest(kbs.DefaultHash, nonce, pub, device)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := testEmulators(t)["good"].Attest(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	primary, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}

	body, err := json.Marshal(kbs.Attestation{
		RuntimeData: kbs.RuntimeData{Nonce: nonce, TEEPubKey: pub},
		TEEEvidence: kbs.TEEEvidence{PrimaryEvidence: primary, AdditionalEvidence: device},
	})
	if err != nil {
		t.Fatal(err)
	}
	return key, string(body)
}

// sampleDeviceEvidence returns the additional_evidence string of a sample
// device report with SVN 2 over reportData.
func sampleDeviceEvidence(reportData []byte) string {
	return `{"sampledevice":{"svn":"2","report_data":"` + base64.StdEncoding.EncodeToString(reportData) + `"}}`
}

// submodStatuses returns the ear.status of each submodule of a token, read
// without checking the signature.
func submodStatuses(t *testing.T, token string) map[string]ear.Status {
	t.Helper()
	claims := unverifiedClaims(t, token)
	submods, _ := claims["submods"].(map[string]any)
	out := map[string]ear.Status{}
	for name, sub := range submods {
		m, _ := sub.(map[string]any)
		status, _ := m["ear.status"].(string)
		out[name] = ear.Status(status)
	}
	return out
}
