package server

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"testing"

	"github.com/cloister-dev/cloister/kbs"
)

// Two replicas share one store, so a guest's requests may reach either.
// Each replica keeps the sessions it created in memory, and that copy must
// not hide what the other replica recorded. Here replica A creates the
// session and replica B attests it. A then releases the secret for the
// session and returns B's token on a second attest.
func TestReplicasShareSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		a := startService(t, b, serviceOptions{allowEmulated: true})
		other := a.replica(t)
		jar, _ := cookiejar.New(nil)

		body := attestBody(t, auth(t, a, jar))
		token := attestToken(t, post(t, other, jar, "/kbs/v0/attest", body))

		resp := getWithJar(t, a, jar, "/kbs/v0/resource/"+testSecretPath)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("resource on replica A with the session cookie: %s", resp.Status)
		}
		again := attestToken(t, post(t, a, jar, "/kbs/v0/attest", body))
		if again != token {
			t.Error("replica A issued another token for the session replica B attested")
		}

		// An attestation with another TEE key for a session that replica B
		// attested is rejected on replica A, whose cached copy is stale.
		jar2, _ := cookiejar.New(nil)
		nonce := auth(t, a, jar2)
		attestToken(t, post(t, other, jar2, "/kbs/v0/attest", attestBody(t, nonce)))
		resp = post(t, a, jar2, "/kbs/v0/attest", attestBody(t, nonce))
		wantProblemResponse(t, resp, kbs.ProblemAttestationError, http.StatusUnauthorized)
	})
}

// A replica that attested a session serves the resource for its cookie
// from the session it keeps, and a second attest returns the same token.
func TestReplicaAttestedSessionCached(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		jar, _ := cookiejar.New(nil)

		body := attestBody(t, auth(t, ts, jar))
		token := attestToken(t, post(t, ts, jar, "/kbs/v0/attest", body))
		if again := attestToken(t, post(t, ts, jar, "/kbs/v0/attest", body)); again != token {
			t.Error("a second attest of an attested session issued another token")
		}
		resp := getWithJar(t, ts, jar, "/kbs/v0/resource/"+testSecretPath)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("resource with the session cookie: %s", resp.Status)
		}
	})
}

// attestToken returns the token of a successful /attest response.
func attestToken(t *testing.T, resp *http.Response) string {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("attest: %s", resp.Status)
	}
	var tok kbs.AttestationToken
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatal(err)
	}
	if tok.Token == "" {
		t.Fatal("attest response has no token")
	}
	return tok.Token
}
