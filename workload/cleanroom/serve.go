package cleanroom

import (
	"context"
	"log/slog"
	"net"

	"github.com/cloister-dev/cloister/workload"
)

// Serve serves room over RA-TLS from tee on ln until ctx is cancelled,
// accepting only the manifest's parties as clients.
func Serve(ctx context.Context, ln net.Listener, tee *workload.TEE, room *Room, log *slog.Logger) error {
	m, _ := room.Manifest()
	return workload.Serve(ctx, ln, workload.ServerConfig{
		TEE:     tee,
		Parties: m.WorkloadParties(),
		Handler: Handler(room, log),
		Log:     log,
	})
}
