package modelserve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/cloister-dev/cloister/workload"
)

// Manifest is the serving configuration the parties agree on. Its digest
// is bound into the evidence through HOST_DATA.
type Manifest struct {
	// Name identifies the deployment in logs and output.
	Name string `json:"name"`
	// ModelSHA256 is the SHA-256 of the model's plaintext JSON. The
	// workload serves no model with another digest.
	ModelSHA256 workload.Digest `json:"model_sha256"`
	// KeyResource is the key broker resource path (repository/type/tag)
	// of the model's 32-byte AES-256 key.
	KeyResource string `json:"key_resource"`
	// Parties are the clients that may request predictions.
	Parties []Party `json:"parties"`
	// MaxBatch bounds the inputs of one request; zero means
	// DefaultMaxBatch.
	MaxBatch int `json:"max_batch,omitempty"`
}

// Party is a client of the model.
type Party struct {
	Name      string          `json:"name"`
	KeySHA256 workload.Digest `json:"key_sha256"`
}

// DefaultMaxBatch is the batch limit when the manifest sets none.
const DefaultMaxBatch = 256

var (
	nameSyntax      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	resourceSegment = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`)
)

// ParseManifest decodes and validates a manifest file and returns it with
// its digest.
func ParseManifest(raw []byte) (*Manifest, workload.Digest, error) {
	digest, err := workload.HashManifest(raw)
	if err != nil {
		return nil, workload.Digest{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, workload.Digest{}, fmt.Errorf("invalid model-serving manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, workload.Digest{}, err
	}
	return &m, digest, nil
}

// Validate checks the manifest and names the first invalid field.
func (m *Manifest) Validate() error {
	if m.ModelSHA256.IsZero() {
		return fmt.Errorf("invalid model-serving manifest: model_sha256 is missing: use the digest that cloister modelserve encrypt prints")
	}
	segments := strings.Split(m.KeyResource, "/")
	if len(segments) != 3 {
		return fmt.Errorf("invalid model-serving manifest: key_resource %q must be repository/type/tag", m.KeyResource)
	}
	for _, s := range segments {
		if !resourceSegment.MatchString(s) {
			return fmt.Errorf("invalid model-serving manifest: key_resource %q: segment %q must be letters, digits, '_', '-' and '.'", m.KeyResource, s)
		}
	}
	if m.MaxBatch < 0 || m.MaxBatch > 1<<16 {
		return fmt.Errorf("invalid model-serving manifest: max_batch %d is out of range: use 0 (default %d) to %d", m.MaxBatch, DefaultMaxBatch, 1<<16)
	}
	if len(m.Parties) == 0 {
		return fmt.Errorf("invalid model-serving manifest: parties is empty")
	}
	names := map[string]bool{}
	keys := map[workload.Digest]bool{}
	for _, p := range m.Parties {
		if !nameSyntax.MatchString(p.Name) {
			return fmt.Errorf("invalid model-serving manifest: party name %q: use lowercase letters, digits, '.', '_' and '-', at most 63 characters", p.Name)
		}
		if names[p.Name] {
			return fmt.Errorf("invalid model-serving manifest: party %q is listed twice", p.Name)
		}
		if p.KeySHA256.IsZero() || keys[p.KeySHA256] {
			return fmt.Errorf("invalid model-serving manifest: party %q needs a key_sha256 of its own", p.Name)
		}
		names[p.Name], keys[p.KeySHA256] = true, true
	}
	return nil
}

func (m *Manifest) maxBatch() int {
	if m.MaxBatch == 0 {
		return DefaultMaxBatch
	}
	return m.MaxBatch
}

// WorkloadParties returns the parties as the workload server identifies
// them.
func (m *Manifest) WorkloadParties() []workload.Party {
	out := make([]workload.Party, len(m.Parties))
	for i, p := range m.Parties {
		out[i] = workload.Party{Name: p.Name, KeyHash: p.KeySHA256}
	}
	return out
}
