package ear

import (
	"crypto/sha256"
	"io"
	"sync"
	"time"
)

// DefaultIssuedCapacity is the number of tokens an Issued cache holds when
// its capacity is zero.
const DefaultIssuedCapacity = 1024

// Issued remembers the tokens a Signer issued until they expire. A key
// broker verifies each token it issued once more when the guest requests a
// secret, and with this cache it skips parsing the JWS and checking its own
// signature.
//
// Entries are keyed by the SHA-256 of the whole compact token, so only the
// exact bytes the Signer returned match. Any other token, including one
// issued by another replica, takes the full verification. The claims of a
// remembered token are still checked as usual: issuer, profile, and iat
// and exp against the time of use. The cache holds at most Capacity
// tokens, dropping the oldest first, and drops expired ones as new ones
// arrive; a token that was dropped costs only the full verification.
//
// The zero value is ready to use and safe for concurrent use. Share one
// Issued between a Signer and the Verifier that trusts its key.
type Issued struct {
	// Capacity bounds the tokens held; zero means DefaultIssuedCapacity.
	Capacity int

	mu     sync.Mutex
	tokens map[[sha256.Size]byte]issuedToken
	// order holds the keys in the order the tokens were issued, which is
	// also the order they expire in while the lifetime is unchanged.
	order [][sha256.Size]byte
}

// issuedToken is a remembered token's signed payload, signing key ID and
// expiry time.
type issuedToken struct {
	payload []byte
	kid     string
	expires time.Time
}

// remember records token with the payload and key ID it was signed with.
func (c *Issued) remember(token string, payload []byte, kid string, expires time.Time, now time.Time) {
	key := tokenKey(token)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		c.tokens = map[[sha256.Size]byte]issuedToken{}
	}
	for len(c.order) > 0 {
		oldest := c.order[0]
		t, ok := c.tokens[oldest]
		if ok && len(c.tokens) < c.capacity() && !now.After(t.expires.Add(Leeway)) {
			break
		}
		delete(c.tokens, oldest)
		c.order = c.order[1:]
	}
	c.tokens[key] = issuedToken{payload: payload, kid: kid, expires: expires}
	c.order = append(c.order, key)
}

// lookup returns the remembered token that is exactly token.
func (c *Issued) lookup(token string) (issuedToken, bool) {
	key := tokenKey(token)
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[key]
	return t, ok
}

// tokenKey returns the SHA-256 of token, hashing the string in place
// rather than a copy of it as a byte slice.
func tokenKey(token string) [sha256.Size]byte {
	h := sha256.New()
	io.WriteString(h, token)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

// Len returns the number of tokens held.
func (c *Issued) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tokens)
}

func (c *Issued) capacity() int {
	if c.Capacity > 0 {
		return c.Capacity
	}
	return DefaultIssuedCapacity
}
