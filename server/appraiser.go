package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/store"
)

// DefaultResourcePolicyName is the name of the resource policy in the
// store; when it is absent, policy.DefaultResource applies.
const DefaultResourcePolicyName = "default"

// appraiser verifies evidence with the registered verifiers and appraises
// the claims with the attestation policy of the claims' TEE: the store's
// attestation policy named after the TEE ("snp"), or
// policy.DefaultAttestation for that TEE. It reads the policy and the
// reference values through cache.
type appraiser struct {
	cache       *configCache
	engine      *policy.Engine
	verify      attest.Options
	config      policy.Config
	now         func() time.Time
	verifyTimer func(d time.Duration)
}

func (a *appraiser) Appraise(ctx context.Context, tee string, ev attest.Evidence) (*kbs.Verdict, error) {
	opts := a.verify
	opts.At = a.now()

	start := time.Now()
	var claims *attest.Claims
	var err error
	if ev.Format == kbs.SampleFormat {
		claims, err = kbs.SampleVerifier{}.Verify(ctx, ev, opts)
	} else {
		claims, err = attest.Verify(ctx, ev, opts)
	}
	if a.verifyTimer != nil {
		a.verifyTimer(time.Since(start))
	}
	if err != nil {
		return nil, err
	}

	mod, err := a.cache.attestationPolicy(ctx, claims.TEE)
	if err != nil {
		return nil, err
	}
	refs, err := a.cache.referenceValues(ctx, opts.At)
	if err != nil {
		return nil, err
	}
	// The claims are encoded once, for the policy input, the token and the
	// claims digest.
	d, claimsJSON, err := a.engine.AppraiseEncoded(ctx, mod.module, claims, a.config, refs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", kbs.ErrPolicyEvaluation, err)
	}

	evidenceSum := sha256.Sum256(ev.Data)
	return &kbs.Verdict{
		Claims:           claims,
		ClaimsJSON:       claimsJSON,
		Decision:         d,
		PolicyID:         mod.id,
		PolicyDigest:     mod.digest,
		EvidenceDigest:   hex.EncodeToString(evidenceSum[:]),
		CollateralDigest: collateralDigest(claims),
	}, nil
}

// collateralDigest is the SHA-256 over the digests of the certificates and
// collateral items the verifier used, in the order it reports them.
func collateralDigest(c *attest.Claims) string {
	if len(c.Chain) == 0 && len(c.Collateral) == 0 {
		return ""
	}
	h := sha256.New()
	for _, cert := range c.Chain {
		h.Write(cert.SHA256)
	}
	for _, item := range c.Collateral {
		h.Write(item.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// authorizer evaluates the store's resource policy, or the default one,
// read through cache.
type authorizer struct {
	cache  *configCache
	engine *policy.Engine
}

func (a *authorizer) Allow(ctx context.Context, claimsJSON []byte, path string, query map[string][]string) (kbs.Authorization, error) {
	mod, err := a.cache.resourcePolicy(ctx)
	if err != nil {
		return kbs.Authorization{}, err
	}
	res := policy.Resource{Path: path}
	if parts := splitPath(path); len(parts) == 3 {
		res.Repository, res.Type, res.Tag = parts[0], parts[1], parts[2]
	}
	decision := kbs.Authorization{PolicyID: mod.id, PolicyDigest: mod.digest}
	d, err := a.engine.AuthorizeJSON(ctx, mod.module, claimsJSON, res, query)
	if err != nil {
		return decision, err
	}
	decision.Allowed = d.Allowed
	if !d.Allowed {
		decision.Reasons = reasonTexts(mod.id, d)
		decision.ReasonsFailed = d.ReasonsErr != nil
	}
	return decision, nil
}

// Bounds of the reason texts of one denial, which go to a log line and an
// audit record. A reason may quote the request's query, which the client
// chooses.
const (
	maxReasonTexts   = 16
	maxReasonTextLen = 1024
)

// reasonTexts returns the reasons of a denial as texts for the log and the
// audit record (see reasonText), at most maxReasonTexts and a count of the
// rest. A reasons rule that failed gives one text that names the policy
// and the error, and the request stays denied.
func reasonTexts(policyID string, d policy.ResourceDecision) []string {
	if d.ReasonsErr != nil {
		return []string{truncateText(fmt.Sprintf("the reasons rule of resource policy %s failed, so the denial has no reasons: %v", policyID, d.ReasonsErr))}
	}
	var texts []string
	for i, r := range d.Reasons {
		if i == maxReasonTexts {
			texts = append(texts, fmt.Sprintf("%d more reasons left out", len(d.Reasons)-maxReasonTexts))
			break
		}
		texts = append(texts, truncateText(reasonText(r)))
	}
	return texts
}

// reasonText returns r as "rule: message (claim c, value "v", expected
// "e")", leaving out empty members.
func reasonText(r appraise.Reason) string {
	var details []string
	if r.Claim != "" {
		details = append(details, "claim "+r.Claim)
	}
	if r.Value != "" {
		details = append(details, "value "+strconv.Quote(r.Value))
	}
	if r.Expected != "" {
		details = append(details, "expected "+strconv.Quote(r.Expected))
	}
	text := r.Rule + ": " + r.Message
	if len(details) > 0 {
		text += " (" + strings.Join(details, ", ") + ")"
	}
	return text
}

// truncateText cuts text to at most maxReasonTextLen bytes at a character
// boundary and marks the cut with an ellipsis.
func truncateText(text string) string {
	if len(text) <= maxReasonTextLen {
		return text
	}
	cut := maxReasonTextLen
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + "…"
}

// ValidatePolicy compiles a policy module of kind before it is stored, so
// that a broken policy is rejected at upload rather than at the next
// request. Attestation policies must define deny, resource policies allow,
// and a resource policy's optional reasons rule must be a set of reason
// objects.
func ValidatePolicy(kind store.PolicyKind, name, module string) error {
	rule := ""
	switch kind {
	case store.PolicyAttestation:
		rule = "deny"
	case store.PolicyResource:
		// Check also rejects a module that reads both Cloister's and
		// Trustee's input, which could never allow a release.
		rule = "allow"
	default:
		return fmt.Errorf("unknown policy kind %q: use attestation or resource", kind)
	}
	m := policy.Module{Name: name, Text: module}
	if err := validationEngine.Check(context.Background(), m, rule); err != nil {
		return err
	}
	if kind == store.PolicyResource {
		// A reasons rule whose type is wrong would leave every denial
		// unexplained.
		return policy.CheckReasons(m)
	}
	return checkDenyShape(m)
}

// checkDenyShape appraises empty claims with an attestation policy, which
// makes most policies deny, and rejects the policy when its reasons are not
// reason objects with string members. Other evaluation errors are left to
// the requests, because empty claims are not evidence a policy must handle.
func checkDenyShape(m policy.Module) error {
	_, err := validationEngine.AppraiseJSON(context.Background(), m, []byte("{}"), policy.Config{}, nil)
	if errors.Is(err, policy.ErrDenyShape) {
		return err
	}
	return nil
}

// validationEngine compiles uploaded policies.
var validationEngine = policy.NewEngine()
