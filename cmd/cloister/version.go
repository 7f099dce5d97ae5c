package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func init() { register(newVersionCmd) }

// newVersionCmd returns the command that prints the module version and the
// source revision that the Go toolchain recorded in the binary.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and source revision of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionText())
			return nil
		},
	}
}

// versionText returns "cloister VERSION (revision REV[, modified], GOVERSION)"
// from the build information, with "unknown" for what was not recorded.
func versionText() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "cloister (no build information)"
	}
	version := info.Main.Version
	if version == "" {
		version = "unknown"
	}
	revision, modified := "unknown", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	text := fmt.Sprintf("cloister %s (revision %s", version, revision)
	if modified {
		text += ", modified"
	}
	return text + ", " + info.GoVersion + ")"
}
