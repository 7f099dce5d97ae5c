package ear

import (
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cloister-dev/cloister/internal/fifocache"
)

// DefaultIssuedCapacity is the number of tokens an Issued cache holds when
// its capacity is zero.
const DefaultIssuedCapacity = 1024

// DefaultIssuedMaxBytes bounds the bytes of the tokens and payloads an
// Issued cache holds when its MaxBytes is zero.
const DefaultIssuedMaxBytes = 32 << 20

// Issued remembers the tokens a Signer issued until they expire. A key
// broker verifies each token it issued once more when the guest requests a
// secret, and with this cache it skips parsing the JWS, checking its own
// signature and decoding the typed claim set. Verify still decodes the
// claim map from the payload, and VerifyText decodes nothing.
//
// Entries are keyed by the whole compact token, so only the exact bytes
// the Signer returned match. Each entry keeps the token and its payload,
// roughly 10 KB for an SEV-SNP token. Any other token, including one
// issued by another replica, takes the full verification. The claims of a
// remembered token are still checked as usual: issuer, profile, and iat
// and exp against the time of use. The cache holds at most Capacity
// tokens and MaxBytes of tokens and payloads. It drops the oldest first,
// and drops expired ones as new ones arrive. A token that was dropped, or
// one too large to hold, costs only the full verification.
//
// The zero value is ready to use and safe for concurrent use. Share one
// Issued between a Signer and the Verifier that trusts its key.
type Issued struct {
	// Capacity bounds the tokens held; zero means DefaultIssuedCapacity.
	Capacity int
	// MaxBytes bounds the bytes of the tokens and payloads held; zero
	// means DefaultIssuedMaxBytes.
	MaxBytes int

	mu     sync.Mutex
	tokens fifocache.Cache[issuedToken]
}

// issuedToken is a remembered token's signed payload and signing key ID.
type issuedToken struct {
	payload []byte
	kid     string
	// frame is the signed claim set without its annotated evidence,
	// exactly as decoding payload gives it, so that the verification
	// decodes the payload only once, for the claim map. It is nil when a
	// string of the claim set is not valid UTF-8, because the JSON
	// encoding replaced those bytes and only decoding gives the result.
	frame *Result
}

// remember records token with the payload and key ID it was signed with
// and the claim set r that payload encodes.
func (c *Issued) remember(token string, payload []byte, kid string, r *Result, now time.Time) {
	t := issuedToken{payload: payload, kid: kid, frame: frameOf(r)}
	deadline := time.Unix(r.Expiry, 0).Add(Leeway)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens.Put(token, t, len(token)+len(payload), deadline, now,
		fifocache.Limits{Entries: c.capacity(), Bytes: c.maxBytes()})
}

// lookup returns the remembered token that is exactly token.
func (c *Issued) lookup(token string) (issuedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens.Get(token)
}

// Len returns the number of tokens held.
func (c *Issued) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens.Len()
}

func (c *Issued) capacity() int {
	if c.Capacity > 0 {
		return c.Capacity
	}
	return DefaultIssuedCapacity
}

func (c *Issued) maxBytes() int {
	if c.MaxBytes > 0 {
		return c.MaxBytes
	}
	return DefaultIssuedMaxBytes
}

// frameOf returns a copy of r without annotated evidence, equal to what
// decoding r's JSON encoding gives, or nil when a string of r is not valid
// UTF-8.
func frameOf(r *Result) *Result {
	texts := []string{r.Profile, r.Issuer, r.ID, r.Nonce, r.VerifierID.Developer, r.VerifierID.Build}
	frame := *r
	if r.Submods != nil {
		frame.Submods = make(map[string]*Appraisal, len(r.Submods))
	}
	for name, a := range r.Submods {
		texts = append(texts, name)
		if a == nil {
			frame.Submods[name] = nil
			continue
		}
		c := copyAppraisal(a)
		texts = append(texts, string(c.Status), c.PolicyID)
		if k := c.KeyClaims; k != nil {
			texts = append(texts, k.TEE, k.Measurement, k.ReportData, k.HostData, k.TCBStatus)
		}
		if d := c.Digests; d != nil {
			texts = append(texts, d.Evidence, d.Collateral, d.Policy)
		}
		for _, reason := range c.Reasons {
			texts = append(texts, reason.Rule, reason.Claim, reason.Value, reason.Expected, reason.Message)
		}
		frame.Submods[name] = c
	}
	for _, s := range texts {
		if !utf8.ValidString(s) {
			return nil
		}
	}
	return &frame
}

// copyAppraisal returns a copy of a without annotated evidence that shares
// no memory with a. An empty reason list becomes nil, because the JSON
// encoding omits it.
func copyAppraisal(a *Appraisal) *Appraisal {
	c := *a
	c.AnnotatedEvidence = nil
	c.Reasons = nil
	if len(a.Reasons) > 0 {
		c.Reasons = slices.Clone(a.Reasons)
	}
	if a.KeyClaims != nil {
		k := *a.KeyClaims
		c.KeyClaims = &k
	}
	if a.Digests != nil {
		d := *a.Digests
		c.Digests = &d
	}
	if a.TrustVector != nil {
		tv := *a.TrustVector
		c.TrustVector = &tv
	}
	return &c
}

// withEvidence returns a copy of frame that shares no memory a caller may
// change with it, whose appraisals take their annotated evidence from all,
// the decoded claim map.
func (frame *Result) withEvidence(all map[string]any) (*Result, error) {
	res := *frame
	if frame.Submods == nil {
		return &res, nil
	}
	res.Submods = make(map[string]*Appraisal, len(frame.Submods))
	for name, a := range frame.Submods {
		if a == nil {
			res.Submods[name] = nil
			continue
		}
		evidence, err := annotatedEvidence(all, name)
		if err != nil {
			return nil, err
		}
		c := copyAppraisal(a)
		c.AnnotatedEvidence = evidence
		res.Submods[name] = c
	}
	return &res, nil
}
