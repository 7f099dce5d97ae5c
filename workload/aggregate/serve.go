package aggregate

import (
	"context"
	"log/slog"
	"net"

	"github.com/cloister-dev/cloister/workload"
)

// Serve runs the aggregation workload for m on ln until ctx is cancelled.
// tee must bind the manifest's digest (workload.OpenTEE checks it), and
// only the manifest's parties complete the TLS handshake.
func Serve(ctx context.Context, ln net.Listener, tee *workload.TEE, m *Manifest, digest workload.Digest, log *slog.Logger) error {
	agg, err := New(m)
	if err != nil {
		return err
	}
	return workload.Serve(ctx, ln, workload.ServerConfig{
		TEE:     tee,
		Parties: m.WorkloadParties(),
		Handler: NewHandler(agg, digest, log),
		Log:     log,
	})
}
