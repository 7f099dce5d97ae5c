package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// tokenID returns the jti claim of a compact JWS token without verifying
// its signature.
func tokenID(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3 of a compact JWS", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode token payload: %v", err)
	}
	var claims struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("token payload: %v", err)
	}
	if claims.ID == "" {
		t.Fatal("token has no jti claim")
	}
	return claims.ID
}

// A release names its token as token:<jti>, and the attest record that
// issued that token carries the same jti as its token ID.
func TestAuditLinksReleaseToAttestation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		ctx := context.Background()

		var ids []string
		for _, bearer := range []bool{false, true} {
			c, token := ts.attestClient(t, "good")
			c.Bearer = bearer
			if _, err := c.Resource(ctx, testSecretPath); err != nil {
				t.Fatalf("bearer=%v: Resource: %v", bearer, err)
			}
			// A denial after the token was verified names it too.
			_, err := c.Resource(ctx, "default/key/missing")
			wantProblem(t, err, kbs.ProblemPluginInternalError, http.StatusUnauthorized)
			ids = append(ids, tokenID(t, token))
		}

		for _, id := range ids {
			recs, err := ts.store.ListAudit(ctx, store.AuditQuery{TokenID: id})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 3 {
				t.Fatalf("audit log has %d records of token %s, want attest, release and deny: %+v", len(recs), id, recs)
			}
			attestRec, release, deny := recs[0], recs[1], recs[2]
			if attestRec.Action != store.AuditAttest || !strings.HasPrefix(attestRec.Requester, "session:") {
				t.Errorf("first record of token %s: action %s, requester %q; want attest by a session", id, attestRec.Action, attestRec.Requester)
			}
			if release.Action != store.AuditRelease || release.Requester != "token:"+attestRec.TokenID {
				t.Errorf("second record of token %s: action %s, requester %q; want release by token:%s", id, release.Action, release.Requester, attestRec.TokenID)
			}
			if deny.Action != store.AuditDeny || deny.Verdict != "not_found" || deny.Requester != "token:"+id {
				t.Errorf("third record of token %s: action %s, verdict %s, requester %q; want deny not_found by token:%s",
					id, deny.Action, deny.Verdict, deny.Requester, id)
			}
		}

		// Every release leads to exactly one attest record.
		releases, err := ts.store.ListAudit(ctx, store.AuditQuery{Action: store.AuditRelease})
		if err != nil {
			t.Fatal(err)
		}
		for _, rel := range releases {
			id, ok := strings.CutPrefix(rel.Requester, "token:")
			if !ok {
				t.Errorf("release record %d has requester %q, want token:<jti>", rel.Seq, rel.Requester)
				continue
			}
			attests, err := ts.store.ListAudit(ctx, store.AuditQuery{Action: store.AuditAttest, TokenID: id})
			if err != nil {
				t.Fatal(err)
			}
			if len(attests) != 1 {
				t.Errorf("release record %d of token %s leads to %d attest records, want 1", rel.Seq, id, len(attests))
			}
		}

		v, err := ts.store.VerifyAudit(ctx)
		if err != nil || v.Broken != nil {
			t.Errorf("VerifyAudit = %+v, %v; want an intact chain", v, err)
		}
	})
}

// An attestation of evidence that the appraisal contraindicates issues a
// token too, and the denial of that token's request names it.
func TestAuditContraindicatedTokenID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		ctx := context.Background()

		c, token := ts.attestClient(t, "unknown")
		_, err := c.Resource(ctx, testSecretPath)
		wantProblem(t, err, kbs.ProblemPolicyDeny, http.StatusUnauthorized)

		id := tokenID(t, token)
		recs, err := ts.store.ListAudit(ctx, store.AuditQuery{TokenID: id})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 {
			t.Fatalf("audit log has %d records of token %s, want attest and deny: %+v", len(recs), id, recs)
		}
		if recs[0].Action != store.AuditAttest || recs[0].Verdict != "contraindicated" {
			t.Errorf("first record of token %s: action %s, verdict %s; want attest, contraindicated", id, recs[0].Action, recs[0].Verdict)
		}
		if recs[1].Action != store.AuditDeny || recs[1].Verdict != "policy_deny" || recs[1].Requester != "token:"+id {
			t.Errorf("second record of token %s: action %s, verdict %s, requester %q; want deny, policy_deny, token:%s",
				id, recs[1].Action, recs[1].Verdict, recs[1].Requester, id)
		}
	})
}

// A rejected attestation and requests without a valid token name no
// verified token, so their records have no token ID.
func TestAuditNoTokenIDWithoutVerifiedToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		ctx := context.Background()

		jar, _ := cookiejar.New(nil)
		auth(t, ts, jar)
		resp := post(t, ts, jar, "/kbs/v0/attest", "{}")
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attest with an empty attestation: %s, want 401", resp.Status)
		}
		get(t, ts, "/kbs/v0/resource/"+testSecretPath, "")
		get(t, ts, "/kbs/v0/resource/"+testSecretPath, "not-a-token")

		recs, err := ts.store.ListAudit(ctx, store.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		verdicts := map[string]bool{}
		for _, r := range recs {
			verdicts[r.Verdict] = true
			if r.TokenID != "" {
				t.Errorf("%s record %d (%s) has token ID %q, want none", r.Action, r.Seq, r.Verdict, r.TokenID)
			}
		}
		for _, want := range []string{"rejected", "no_token", "invalid_token"} {
			if !verdicts[want] {
				t.Errorf("audit log has no %s record: %+v", want, recs)
			}
		}
	})
}
