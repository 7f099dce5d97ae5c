package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

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
	d, claimsJSON, err := a.engine.AppraiseEncoded(ctx, mod, claims, a.config, refs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", kbs.ErrPolicyEvaluation, err)
	}

	evidenceSum := sha256.Sum256(ev.Data)
	return &kbs.Verdict{
		Claims:           claims,
		ClaimsJSON:       claimsJSON,
		Decision:         d,
		PolicyID:         mod.ID(),
		PolicyDigest:     mod.Digest(),
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
	decision := kbs.Authorization{PolicyID: mod.ID(), PolicyDigest: mod.Digest()}
	decision.Allowed, err = a.engine.AllowJSON(ctx, mod, claimsJSON, res, query)
	return decision, err
}

// ValidatePolicy compiles a policy module of kind before it is stored, so
// that a broken policy is rejected at upload rather than at the next
// request. Attestation policies must define deny, resource policies allow.
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
	err := validationEngine.Check(context.Background(), m, rule)
	if err != nil || kind != store.PolicyAttestation {
		return err
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
