package modelserve

import (
	"context"
	"log/slog"
	"net"

	"github.com/cloister-dev/cloister/workload"
)

// Serve runs the prediction API of s on ln until ctx is cancelled. tee
// must bind the manifest's digest (workload.OpenTEE checks it), and only
// the manifest's parties complete the TLS handshake.
func Serve(ctx context.Context, ln net.Listener, tee *workload.TEE, s *Service, log *slog.Logger) error {
	return workload.Serve(ctx, ln, workload.ServerConfig{
		TEE:     tee,
		Parties: s.m.WorkloadParties(),
		Handler: NewHandler(s, log),
		Log:     log,
	})
}
