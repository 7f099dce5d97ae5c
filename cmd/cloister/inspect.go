package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/attest"
)

func init() { register(newInspectCmd) }

func newInspectCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [flags] FILE",
		Short: "Print every field of attestation evidence without judging it",
		Long: `Decode attestation evidence (a file, or - for standard input) and print every
field as JSON. Nothing is verified: the output is what the bytes claim, not
what was proven. Use verify for that.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readEvidence(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			v, ok := attest.Lookup(format)
			if format == "" {
				if v, err = attest.Detect(data); err != nil {
					return usageError("%v", err)
				}
			} else if !ok {
				return usageError("unknown --format %q", format)
			}
			in, ok := v.(attest.Inspector)
			if !ok {
				return usageError("format %s cannot be inspected yet", v.Name())
			}
			fields, err := in.Inspect(data)
			if err != nil {
				return &exitError{code: exitRejected, err: err}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"format": v.Name(), "unverified": true, "fields": fields})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "evidence format, when detection is ambiguous")
	return cmd
}
