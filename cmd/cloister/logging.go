package main

import (
	"log/slog"
	"os"
)

// jsonLogger returns a logger that writes JSON lines to standard error at
// the --log-level given as level, the format of every long-running
// command (serve, agent and the workloads).
func jsonLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError("invalid --log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
