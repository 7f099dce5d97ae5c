package aggregate

import (
	"fmt"
	"math"

	"github.com/cloister-dev/cloister/workload"
)

// MaxDimension bounds Manifest.Dimension, so that one update stays below
// about 128 MiB of JSON.
const MaxDimension = 1 << 22

// Manifest is the aggregation rule that the parties agree on. Its digest
// (workload.HashManifest of the file) is bound into the evidence through
// HOST_DATA, so every field is attested.
type Manifest struct {
	// Name identifies the federation in logs and output.
	Name string `json:"name"`
	// Dimension is the length of every update.
	Dimension int `json:"dimension"`
	// MinClients is the number of distinct parties a round needs before
	// its mean is released (k). It must be at least 2, because the mean
	// of one update is that update.
	MinClients int `json:"min_clients"`
	// ClipNorm, when positive, scales each update whose L2 norm is above
	// it down to norm ClipNorm before it is added.
	ClipNorm float64 `json:"clip_norm,omitempty"`
	// Parties are the clients that may submit updates, close rounds and
	// read aggregates, each named by the SHA-256 of its public key.
	Parties []Party `json:"parties"`
}

// Party is a client of the federation.
type Party = workload.ManifestParty

// ParseManifest decodes and validates a manifest file and returns it with
// its digest. Unknown fields are rejected, because a field this version
// ignores could be one the parties rely on.
func ParseManifest(raw []byte) (*Manifest, workload.Digest, error) {
	return workload.DecodeManifest[Manifest](raw, "aggregation")
}

// Validate checks the manifest and names the first invalid field.
func (m *Manifest) Validate() error {
	if m.Dimension < 1 || m.Dimension > MaxDimension {
		return fmt.Errorf("invalid aggregation manifest: dimension %d is out of range: use 1 to %d", m.Dimension, MaxDimension)
	}
	if m.MinClients < 2 {
		return fmt.Errorf("invalid aggregation manifest: min_clients %d is too small: use at least 2, because the mean of one update is that update", m.MinClients)
	}
	if math.IsNaN(m.ClipNorm) || math.IsInf(m.ClipNorm, 0) || m.ClipNorm < 0 {
		return fmt.Errorf("invalid aggregation manifest: clip_norm %v is invalid: use a finite value >= 0 (0 turns clipping off)", m.ClipNorm)
	}
	if err := workload.CheckParties(m.Parties); err != nil {
		return fmt.Errorf("invalid aggregation manifest: %w", err)
	}
	if len(m.Parties) < m.MinClients {
		return fmt.Errorf("invalid aggregation manifest: %d parties can never reach min_clients %d", len(m.Parties), m.MinClients)
	}
	return nil
}

// WorkloadParties returns the parties as the workload server identifies
// them.
func (m *Manifest) WorkloadParties() []workload.Party {
	return workload.ServerParties(m.Parties)
}
