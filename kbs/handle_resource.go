package kbs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
	"github.com/cloister-dev/cloister/internal/printable"
	"github.com/cloister-dev/cloister/internal/resourcepath"
	"github.com/cloister-dev/cloister/store"
)

// teePubKeyPointers are the claim paths where Trustee looks for the TEE
// key, in its order; Cloister's own tokens use the EAR one.
var teePubKeyPointers = [][]string{
	{"submods", "cpu0", "ear.veraison.annotated-evidence", "runtime_data_claims", "tee-pubkey"},
	{"tee-pubkey"},
}

// handleResource releases the secret at path as a JWE to the TEE key of
// the caller's verified token.
func (s *Server) handleResource(w http.ResponseWriter, r *http.Request, path string) {
	ctx := r.Context()
	start := s.now()
	// evidenceDigest, policyDigest and tokenID are set as they become
	// known, so that an audit record names the evidence behind the token,
	// the resource policy that decided and the verified token.
	var evidenceDigest, policyDigest, tee, tokenID string
	deny := func(p *Problem, outcome, requester string, err error) {
		level := slog.LevelInfo
		if outcome == "audit_error" || outcome == "secret_error" {
			// The store failed to record a release or to open the
			// secret, which an operator must fix.
			level = slog.LevelError
		} else if errors.Is(err, ear.ErrUnknownKey) {
			// Replicas that sign with different keys are a set-up fault,
			// not a guest's.
			level = slog.LevelWarn
		}
		s.logger().Log(ctx, level, "kbs resource denied", "request_id", requestID(r), "resource", path,
			"requester", requester, "problem", p.Variant(), "error", err)
		// Every denial is recorded, including one for a request with no
		// token or an invalid path, which names no verified requester. A
		// release whose audit record failed to append is not recorded
		// again as a denial.
		if outcome != "audit_error" {
			s.auditGrouped(ctx, store.AuditRecord{Action: store.AuditDeny, Requester: requester, TEE: tee,
				EvidenceDigest: evidenceDigest, PolicyDigest: policyDigest, Resource: path, Verdict: outcome,
				Reason: p.Variant() + ": " + errString(err), RequestID: requestID(r), TokenID: tokenID})
		}
		if s.Observer != nil {
			s.Observer.Release(outcome, s.now().Sub(start))
		}
		p.Write(w)
	}

	if err := resourcepath.Check(path); err != nil {
		// The path comes from the client, so the record keeps a short,
		// quoted form that an audit listing prints safely.
		path = printable.Quote(path, resourcepath.MaxQuoted)
		deny(NewProblem(ProblemPluginInternalError, "Plugin internal error"), "invalid_path", "", err)
		return
	}

	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		deny(NewProblem(ProblemPluginInternalError, "Plugin internal error"), "invalid_query", "",
			fmt.Errorf("invalid query string %s: %w; percent-encode each name and value, and separate pairs with '&'",
				printable.Quote(r.URL.RawQuery, resourcepath.MaxQuoted), err))
		return
	}

	token, requester, missing := s.tokenFor(r)
	if token == "" {
		deny(NewProblem(ProblemTokenNotFound, "Attestation Token not found"), "no_token", requester, missing)
		return
	}
	// The claims stay JSON text: the TEE key and the resource policy's few
	// paths are read in place.
	result, claimsJSON, err := s.Tokens.VerifyText(token, s.now())
	if errors.Is(err, ear.ErrUnknownKey) {
		// Behind a load balancer, a service that shares this store may
		// have issued the token under a key of its own.
		err = fmt.Errorf("%w; services that share one store must all sign with the same EAR key, so copy one %s into the data directory of each", err, ear.KeyFile)
	}
	if err != nil {
		deny(NewProblem(ProblemTokenVerifierError, "Token Verifier error"), "invalid_token", requester, err)
		return
	}
	// TokenID repeats the ID in Requester, so that the token's attest,
	// release and deny records share one field to search by.
	requester = "token:" + result.ID
	tokenID = result.ID
	tee = teeOfResult(result)
	if cpu := result.Submods["cpu0"]; cpu != nil && cpu.Digests != nil {
		evidenceDigest = cpu.Digests.Evidence
	}
	if err := requireAccepted(result); err != nil {
		deny(NewProblem(ProblemPolicyDeny, "Access denied by policy"), "policy_deny", requester, err)
		return
	}
	claims, err := jsonvalue.ParseEncodedObject(claimsJSON)
	if err != nil {
		deny(NewProblem(ProblemTokenVerifierError, "Token Verifier error"), "invalid_token", requester, err)
		return
	}
	key, err := teePubKeyFromClaims(claims)
	if err != nil {
		deny(NewProblem(ProblemTokenVerifierError, "Token Verifier error"), "invalid_token", requester, err)
		return
	}

	decision, err := s.Authz.Allow(ctx, claimsJSON, path, query)
	policyDigest = decision.PolicyDigest
	if err != nil {
		deny(NewProblem(ProblemPolicyEngineError, "Policy engine error"), "policy_error", requester, err)
		return
	}
	if !decision.Allowed {
		// The reasons go only to the log line and the audit record,
		// because the KBS protocol fixes the body the client gets.
		denial := fmt.Errorf("the resource policy %s denied the request", decision.PolicyID)
		if len(decision.Reasons) > 0 {
			denial = fmt.Errorf("%w: %s", denial, strings.Join(decision.Reasons, "; "))
		}
		if decision.ReasonsFailed {
			s.logger().Warn("kbs: resource policy reasons rule failed", "request_id", requestID(r),
				"policy", decision.PolicyID, "error", strings.Join(decision.Reasons, "; "))
		}
		deny(NewProblem(ProblemPolicyDeny, "Access denied by policy"), "policy_deny", requester, denial)
		return
	}

	secret, err := s.Store.GetSecret(ctx, path)
	if err != nil {
		// Only a missing secret is "not_found". A secret sealed under a
		// master key this replica lacks, or a database error, is an
		// operator's problem and is recorded as such.
		outcome := "secret_error"
		if errors.Is(err, store.ErrNotFound) {
			outcome = "not_found"
		}
		deny(NewProblem(ProblemPluginInternalError, "Plugin internal error"), outcome, requester, err)
		return
	}
	resp, err := Encrypt(key, secret.Value)
	if err != nil {
		deny(NewProblem(ProblemJweError, "JWE failed"), "jwe_error", requester, err)
		return
	}
	// The release is recorded durably before the secret leaves. It goes
	// through the same group commit as the session writes, because on
	// SQLite a second writer would wait for the write lock.
	rec := store.AuditRecord{Action: store.AuditRelease, Requester: requester, TEE: tee,
		EvidenceDigest: evidenceDigest, PolicyDigest: policyDigest,
		Resource: path, Verdict: "released", Time: s.now(), RequestID: requestID(r), TokenID: tokenID}
	err = s.commit(func(ctx context.Context, tx store.Tx) error {
		_, err := tx.AppendAudit(ctx, rec)
		return err
	})
	if err != nil {
		deny(NewProblem(ProblemPluginInternalError, "Plugin internal error"), "audit_error", requester,
			fmt.Errorf("audit append of the release failed: %w", err))
		return
	}

	s.logger().Info("kbs resource released", "request_id", requestID(r), "resource", path, "requester", requester)
	if s.Observer != nil {
		s.Observer.Release("released", s.now().Sub(start))
	}
	writeJSON(w, resp)
}

// requireAccepted checks that every appraisal in a verified token is
// affirming or warning. The attestation policy decides which evidence is
// acceptable, and a resource policy narrows what an accepted result may
// read. No resource policy can release a secret to evidence that an
// attestation policy rejected, such as a composite whose device failed.
func requireAccepted(result *ear.Result) error {
	if result.Submods["cpu0"] == nil {
		return errors.New("the token has no cpu0 appraisal; attest again to obtain a token from this service")
	}
	for _, a := range result.Submods {
		if a == nil || !accepted(a.Status) {
			return rejectedAppraisal(result)
		}
	}
	return nil
}

// accepted reports whether an appraisal of status lets a token read a
// resource.
func accepted(status ear.Status) bool {
	return status == ear.StatusAffirming || status == ear.StatusWarning
}

// rejectedAppraisal returns the error for the first appraisal of result
// that is not accepted: cpu0, then the devices in name order, then the
// empty (nil) appraisals in name order. A missing or empty cpu0 appraisal
// counts as rejected.
func rejectedAppraisal(result *ear.Result) error {
	names := append([]string{"cpu0"}, deviceNames(result)...)
	for _, name := range names {
		a := result.Submods[name]
		if a == nil {
			return emptyAppraisal(name)
		}
		if accepted(a.Status) {
			continue
		}
		return fmt.Errorf("appraisal %s is %q, not affirming or warning, because the attestation policy %s rejected its evidence (%s); fix what the reasons name, or accept that evidence in the attestation policy of its TEE",
			name, a.Status, a.PolicyID, appraisalReasons(a))
	}
	var empty []string
	for name, a := range result.Submods {
		if a == nil {
			empty = append(empty, name)
		}
	}
	if len(empty) > 0 {
		return emptyAppraisal(slices.Min(empty))
	}
	return nil
}

// emptyAppraisal returns the error for a missing or null appraisal of the
// submodule name.
func emptyAppraisal(name string) error {
	return fmt.Errorf("appraisal %s is empty; attest again to obtain a token from this service", name)
}

// appraisalReasons returns a's reasons as "rule: message" texts, or "no
// reasons given".
func appraisalReasons(a *ear.Appraisal) string {
	if len(a.Reasons) == 0 {
		return "no reasons given"
	}
	var b strings.Builder
	writeReasons(&b, "", a)
	return b.String()
}

// tokenFor returns the token of an attested, unexpired cookie session,
// else the bearer token. With neither, token is "" and missing explains why.
// The requester then names the cookie's session, if one was sent.
func (s *Server) tokenFor(r *http.Request) (token, requester string, missing error) {
	var cookieSession string
	if c, err := r.Cookie(SessionCookie); err == nil {
		cookieSession = sessionRef(c.Value)
		// A cached session that is not attested may have been attested
		// by another replica, so only an attested one saves the read.
		// The session's ID is the cookie's value, so its reference is
		// cookieSession.
		if sess, ok := s.sessions.get(c.Value, s.now()); ok && sess.State == store.SessionAttested {
			return sess.Token, cookieSession, nil
		}
		sess, err := s.Store.GetSession(r.Context(), c.Value)
		if err == nil && sess.State == store.SessionAttested && sess.Token != "" {
			return sess.Token, cookieSession, nil
		}
	}

	auth := r.Header.Get("Authorization")
	if auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(tok) != "" {
			return strings.TrimSpace(tok), "bearer", nil
		}
	}

	return "", cookieSession, missingTokenError(cookieSession, auth)
}

// missingTokenError explains why a request with the session reference
// cookieSession (or "") and the Authorization header auth (or "") carries
// no usable token.
func missingTokenError(cookieSession, auth string) error {
	var problems []string
	if cookieSession != "" {
		problems = append(problems, "the session cookie (recorded as "+cookieSession+", the start of the SHA-256 of its value) names a session that is unknown, expired or not attested")
	}
	if auth != "" {
		scheme, _, _ := strings.Cut(auth, " ")
		if strings.EqualFold(scheme, "Bearer") {
			problems = append(problems, "the Authorization header uses the Bearer scheme but carries no token")
		} else {
			// The scheme is not quoted: a header without one starts
			// with the credential itself.
			problems = append(problems, "the Authorization header does not use the Bearer scheme")
		}
	}
	if len(problems) == 0 {
		return errors.New("the request has no session cookie and no bearer token; call /kbs/v0/auth and /kbs/v0/attest first, or send an attestation token as a bearer token")
	}
	return fmt.Errorf("%s; call /kbs/v0/auth and /kbs/v0/attest again, or send \"Authorization: Bearer <attestation token>\"", strings.Join(problems, ", and "))
}

// teePubKeyFromClaims finds the TEE key in a verified token's claim set,
// indexed from the valid JSON that ear.Verifier.VerifyText returns.
func teePubKeyFromClaims(claims *jsonvalue.Object) (TEEPubKey, error) {
	for _, ptr := range teePubKeyPointers {
		raw, ok := claims.Lookup(ptr)
		if !ok {
			continue
		}
		var k TEEPubKey
		if err := json.Unmarshal(raw, &k); err != nil {
			return TEEPubKey{}, err
		}
		return k, nil
	}
	return TEEPubKey{}, errors.New("token claims hold no tee-pubkey")
}

// teeOfResult returns the TEE that the primary appraisal of a token names,
// or "".
func teeOfResult(r *ear.Result) string {
	if a := r.Submods["cpu0"]; a != nil && a.KeyClaims != nil {
		return a.KeyClaims.TEE
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
