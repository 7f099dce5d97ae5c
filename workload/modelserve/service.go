package modelserve

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"

	"github.com/cloister-dev/cloister/workload"
)

// SecretSource releases the model key after attestation. *kbs.Client
// implements it.
type SecretSource interface {
	Resource(ctx context.Context, path string) ([]byte, error)
}

// Service serves predictions of a decrypted model. It is safe for
// concurrent use, because Model.Predict does not modify the model.
type Service struct {
	m     *Manifest
	model *Model
	log   *slog.Logger
}

// Open reads the encrypted model at path, fetches its key from broker,
// decrypts the model in memory and checks its digest against the
// manifest. The bytes of the key and of the decrypted JSON are cleared
// before Open returns. The AES key schedule derived from the key, which
// contains it, stays in the heap until the garbage collector reuses that
// memory.
//
// NOTE: ParseModel reads the plaintext through a json.Decoder, whose
// internal buffer contains a copy that is not cleared. The parsed weights
// stay in memory anyway while the workload serves them.
func Open(ctx context.Context, m *Manifest, path string, broker SecretSource, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	raw, err := workload.ReadFileMax(path, "encrypted model file", maxEncryptedModel,
		fmt.Sprintf("encrypt a model of at most %d parameters with cloister modelserve encrypt", MaxParameters))
	if err != nil {
		return nil, fmt.Errorf("modelserve: %w", err)
	}
	enc, err := ParseEncryptedModel(raw)
	if err != nil {
		return nil, fmt.Errorf("modelserve: %s: %w", path, err)
	}
	if enc.KeyResource != m.KeyResource {
		return nil, fmt.Errorf("modelserve: %s is encrypted for key resource %s, but the manifest names %s", path, enc.KeyResource, m.KeyResource)
	}

	key, err := broker.Resource(ctx, m.KeyResource)
	if err != nil {
		return nil, fmt.Errorf("modelserve: fetching the model key %s from the key broker: %w", m.KeyResource, err)
	}
	plain, err := enc.Decrypt(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("modelserve: %s: %w", path, err)
	}
	defer clear(plain)

	if got := workload.Digest(sha256.Sum256(plain)); got != m.ModelSHA256 {
		return nil, fmt.Errorf("modelserve: the decrypted model has SHA-256 %s, but the manifest names %s: encrypt the model the parties agreed on", got, m.ModelSHA256)
	}
	model, err := ParseModel(plain)
	if err != nil {
		return nil, fmt.Errorf("modelserve: %w", err)
	}
	if n := m.maxBatch() * model.Inputs; n > MaxBatchNumbers {
		return nil, fmt.Errorf("modelserve: a batch of max_batch %d inputs of %d numbers contains %d numbers, more than the limit of %d; lower max_batch in the manifest to at most %d",
			m.maxBatch(), model.Inputs, n, MaxBatchNumbers, MaxBatchNumbers/model.Inputs)
	}
	log.Info("modelserve: model decrypted", "model", model.Name, "model_sha256", m.ModelSHA256.String(),
		"inputs", model.Inputs, "outputs", model.Outputs())
	return &Service{m: m, model: model, log: log}, nil
}

// MaxBatchNumbers bounds the numbers of one predict request (max_batch
// times the model's inputs): 2^22 numbers are 32 MiB as float64.
const MaxBatchNumbers = 1 << 22

// Info describes the served model without revealing its weights.
type Info struct {
	Name        string          `json:"name"`
	Inputs      int             `json:"inputs"`
	Outputs     int             `json:"outputs"`
	ModelSHA256 workload.Digest `json:"model_sha256"`
	MaxBatch    int             `json:"max_batch"`
}

// Info returns the model's description.
func (s *Service) Info() Info {
	return Info{Name: s.model.Name, Inputs: s.model.Inputs, Outputs: s.model.Outputs(),
		ModelSHA256: s.m.ModelSHA256, MaxBatch: s.m.maxBatch()}
}

// Predict evaluates a batch of inputs.
func (s *Service) Predict(inputs [][]float64) ([][]float64, error) {
	if len(inputs) == 0 || len(inputs) > s.m.maxBatch() {
		return nil, fmt.Errorf("batch of %d inputs, want 1 to %d", len(inputs), s.m.maxBatch())
	}
	out := make([][]float64, len(inputs))
	for i, x := range inputs {
		y, err := s.model.Predict(x)
		if err != nil {
			// Counted from 1, as workload.DecodeMatrix counts the arrays.
			return nil, fmt.Errorf("inputs: array %d: %w", i+1, err)
		}
		out[i] = y
	}
	return out, nil
}
