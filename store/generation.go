package store

import (
	"context"
	"fmt"
)

// ConfigGeneration reads the generation that database triggers raise in
// every transaction that changes policies, reference values or secrets
// (migrations 0003_config_generation and 0004_config_generation_time). Each
// change sets it to at least the current time in microseconds, so that it
// does not repeat an earlier value after a backup is restored.
func (s *sqlStore) ConfigGeneration(ctx context.Context) (int64, error) {
	var generation int64
	err := s.querier(nil).QueryRowContext(ctx,
		`SELECT generation FROM config_generation WHERE id = 1`).Scan(&generation)
	if err != nil {
		return 0, fmt.Errorf("store: read configuration generation: %w; if the table config_generation is missing, start cloister serve once against this database to migrate it", err)
	}
	return generation, nil
}
