package modelserve

import (
	"fmt"

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
type Party = workload.ManifestParty

// DefaultMaxBatch is the batch limit when the manifest sets none.
const DefaultMaxBatch = 256

// ParseManifest decodes and validates a manifest file and returns it with
// its digest.
func ParseManifest(raw []byte) (*Manifest, workload.Digest, error) {
	return workload.DecodeManifest[Manifest](raw, "model-serving")
}

// Validate checks the manifest and names the first invalid field.
func (m *Manifest) Validate() error {
	if m.ModelSHA256.IsZero() {
		return fmt.Errorf("invalid model-serving manifest: model_sha256 is missing: use the digest that cloister modelserve encrypt prints")
	}
	if err := workload.CheckResourcePath(m.KeyResource); err != nil {
		return fmt.Errorf("invalid model-serving manifest: key_resource: %w", err)
	}
	if m.MaxBatch < 0 || m.MaxBatch > 1<<16 {
		return fmt.Errorf("invalid model-serving manifest: max_batch %d is out of range: use 0 (default %d) to %d", m.MaxBatch, DefaultMaxBatch, 1<<16)
	}
	if err := workload.CheckParties(m.Parties); err != nil {
		return fmt.Errorf("invalid model-serving manifest: %w", err)
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
	return workload.ServerParties(m.Parties)
}
