package aggregate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// MaxDimension bounds Config.Dimension, so that one update stays below
// about 64 MiB of JSON.
const MaxDimension = 1 << 22

// Config is the aggregation rule a workload enforces. Its digest is bound
// into the evidence through HOST_DATA, so all of it is attested.
type Config struct {
	// Dimension is the length of every update.
	Dimension int `json:"dimension"`
	// MinClients is the number of distinct parties a round needs before
	// its mean is released (k). It must be at least 2, because the mean
	// of one update is that update.
	MinClients int `json:"min_clients"`
	// ClipNorm, when positive, scales each update with an L2 norm above
	// it down to norm ClipNorm before it is added.
	ClipNorm float64 `json:"clip_norm,omitempty"`
	// Parties lists the accepted parties as lowercase hex SHA-256 of
	// their certificate's SubjectPublicKeyInfo (see SPKIHash). Empty
	// accepts any client certificate, which lets one client with several
	// keys fill the threshold alone.
	Parties []string `json:"parties,omitempty"`
}

// digestDomain separates the configuration digest from any other use of
// HOST_DATA.
const digestDomain = "cloister-aggregate-config/v1\n"

// Validate checks the configuration and names the first invalid field.
func (c Config) Validate() error {
	if c.Dimension < 1 || c.Dimension > MaxDimension {
		return fmt.Errorf("aggregate: dimension %d is out of range: use 1 to %d", c.Dimension, MaxDimension)
	}
	if c.MinClients < 2 {
		return fmt.Errorf("aggregate: min_clients %d is too small: use at least 2, because the mean of one update is that update", c.MinClients)
	}
	if math.IsNaN(c.ClipNorm) || math.IsInf(c.ClipNorm, 0) || c.ClipNorm < 0 {
		return fmt.Errorf("aggregate: clip_norm %v is invalid: use a finite value >= 0 (0 turns clipping off)", c.ClipNorm)
	}
	for _, p := range c.Parties {
		if b, err := hex.DecodeString(p); err != nil || len(b) != sha256.Size || p != hex.EncodeToString(b) {
			return fmt.Errorf("aggregate: party %q is not a lowercase hex SHA-256 of a SubjectPublicKeyInfo", p)
		}
	}
	if len(c.Parties) > 0 && len(c.Parties) < c.MinClients {
		return fmt.Errorf("aggregate: %d parties can never reach min_clients %d", len(c.Parties), c.MinClients)
	}
	return nil
}

// Digest returns the SHA-256 of the configuration in a canonical text
// form: the domain line, then "dimension=", "min_clients=", "clip_norm="
// (shortest decimal form) and "parties=" (sorted, deduplicated, comma
// separated) lines. The workload's HOST_DATA must equal it.
func (c Config) Digest() [32]byte {
	parties := slices.Compact(slices.Sorted(slices.Values(c.Parties)))
	text := fmt.Sprintf("%sdimension=%d\nmin_clients=%d\nclip_norm=%s\nparties=%s\n", digestDomain,
		c.Dimension, c.MinClients, strconv.FormatFloat(c.ClipNorm, 'g', -1, 64), strings.Join(parties, ","))
	return sha256.Sum256([]byte(text))
}
