package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloister-dev/cloister/kbs"
)

// Delays between fetches of a secret while the key broker fails
// transiently: the first delay, doubled after each try up to the max.
// Tests shorten them.
var (
	firstRetryDelay = time.Second
	maxRetryDelay   = 15 * time.Second
)

// fetchTimeout bounds each fetch of a secret, the attestation included,
// so that a key broker that accepts the connection and never responds
// counts as a transient failure instead of hanging the agent.
// kbs.Client without an HTTPClient has no timeout of its own. Tests
// shorten it.
//
// NOTE: two minutes is a chosen bound, not a measured one. It is longer
// than the one-minute request timeout of the HTTP client that cloister
// agent gives kbs.Client, so that it cuts only an exchange whose requests
// each still progress.
var fetchTimeout = 2 * time.Minute

// fetchSecret returns the secret at path from src. While src fails with an
// error that kbs.IsTransient accepts, such as a key broker that is still
// starting, it tries again with growing delays for up to retryFor. It
// returns the last error once retryFor has passed or ctx is done, and at
// once for an error that is not transient.
func fetchSecret(ctx context.Context, src SecretSource, path string, retryFor time.Duration, log *slog.Logger) ([]byte, error) {
	deadline := time.Now().Add(retryFor)
	delay := firstRetryDelay
	for try := 1; ; try++ {
		value, err := fetchOnce(ctx, src, path)
		if err == nil || !kbs.IsTransient(err) || ctx.Err() != nil {
			return value, err
		}

		left := time.Until(deadline)
		if left <= 0 {
			if try > 1 {
				return nil, fmt.Errorf("%w (still failing after %d tries in %s)", err, try, retryFor)
			}
			return nil, err
		}
		wait := min(delay, left)
		log.Warn("agent: key broker unavailable, trying again", "resource", path, "try", try, "in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// fetchOnce fetches the secret at path from src within fetchTimeout. A
// fetch that timed out returns an error that kbs.IsTransient accepts.
func fetchOnce(ctx context.Context, src SecretSource, path string) ([]byte, error) {
	attemptCtx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	value, err := src.Resource(attemptCtx, path)
	if err != nil && ctx.Err() == nil && attemptCtx.Err() != nil {
		return nil, fmt.Errorf("fetching %s timed out after %s: %w", path, fetchTimeout, attemptCtx.Err())
	}
	return value, err
}
