package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/store"
)

func init() { register(newRefValueCmd) }

func newRefValueCmd() *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "refvalue",
		Short: "Manage reference values that policies compare claims with",
		Long: `Manage reference values: named lists of accepted values, such as the launch
measurements a workload may have, each with an optional expiry. Policies read
the values that have not expired.`,
	}
	flags.bind(cmd)
	cmd.AddCommand(newRefValueAddCmd(&flags), newRefValueListCmd(&flags), newRefValueRemoveCmd(&flags))
	return cmd
}

func newRefValueAddCmd(flags *adminFlags) *cobra.Command {
	var (
		expires string
		ttl     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "add NAME VALUE",
		Short: "Accept a value under a reference value name",
		Long: `Accept VALUE under NAME, such as snp.measurement or tdx.host_data. NAME is
<tee>.<claim>, and the service rejects a TEE that selects no attestation
policy. The default attestation policies compare the measurement, host data,
chip ID and named measurements (such as tdx.rtmr0 or sgx.mrsigner) as whole
hex strings, so the service rejects a value of these claims that is not hex
of the field's length (48 bytes of SEV-SNP MEASUREMENT, TDX MRTD and RTMRs,
32 of SGX MRENCLAVE and MRSIGNER) and stores it in lower case without a 0x
prefix. Register host data at the full length of the field (32 bytes of
SEV-SNP HOST_DATA, 48 of TDX MRCONFIGID), zero-padded, unlike
"cloister verify --host-data", which pads a shorter value itself. Values of
other claim names are stored as they are, for policies stored with
"cloister policy set" that read them.`,
		Example: `  cloister refvalue add snp.measurement 5d3a...e1 --ttl 720h`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The service runs the same check. Running it here first
			// reports an invalid value without sending a request.
			if _, err := admin.CheckReferenceValue(args[0], args[1]); err != nil {
				return usageError("%v", err)
			}
			warnUnreadName(cmd.ErrOrStderr(), args[0])

			rv := store.ReferenceValue{Name: args[0], Value: args[1]}
			switch {
			case expires != "" && ttl != 0:
				return usageError("use either --expires or --ttl, not both")
			case expires != "":
				t, err := time.Parse(time.RFC3339, expires)
				if err != nil {
					return usageError("invalid --expires %q: use RFC 3339, such as 2027-01-01T00:00:00Z", expires)
				}
				rv.Expires = t
			case ttl < 0:
				return usageError("invalid --ttl %s: must be positive", ttl)
			case ttl > 0:
				rv.Expires = time.Now().Add(ttl)
			}

			c, err := flags.client()
			if err != nil {
				return err
			}
			out, err := c.AddReferenceValue(cmd.Context(), rv)
			if err != nil {
				return err
			}
			if flags.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %s = %s (expires %s)\n", out.Name, out.Value, formatTime(out.Expires))
			return nil
		},
	}
	cmd.Flags().StringVar(&expires, "expires", "", "time the value stops being accepted, RFC 3339 (default: never)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "accept the value for this long from now, such as 720h (default: forever)")
	return cmd
}

// warnUnreadName warns when the default attestation policy of name's TEE
// reads a fixed set of reference values that does not contain name, as when
// the name is misspelt. That policy rejects all evidence of the TEE while
// such a name is registered, because no claim of that name can match it.
func warnUnreadName(w io.Writer, name string) {
	tee, _, _ := strings.Cut(name, ".")
	names, ok := admin.DefaultPolicyNames(tee)
	if !ok || slices.Contains(names, name) {
		return
	}
	fmt.Fprintf(w, "warning: the default %s attestation policy does not read %s, only %s, and rejects all %s evidence while %s is registered; if the name is misspelt, remove it with: cloister refvalue rm %s\n",
		tee, name, strings.Join(names, ", "), tee, name, name)
}

func newRefValueListCmd(flags *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "ls [NAME]",
		Short: "List reference values, expired ones included",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			list, err := c.ListReferenceValues(cmd.Context(), name)
			if err != nil {
				return err
			}
			if flags.output == "json" {
				return printJSON(cmd.OutOrStdout(), list)
			}
			now := time.Now()
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tVALUE\tEXPIRES\tSTATUS")
			for _, rv := range list {
				status := "active"
				if !rv.Expires.IsZero() && !now.Before(rv.Expires) {
					status = "expired"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", rv.Name, rv.Value, formatTime(rv.Expires), status)
			}
			return tw.Flush()
		},
	}
}

func newRefValueRemoveCmd(flags *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME [VALUE]",
		Short: "Remove one value, or every value of a name",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			value := ""
			if len(args) == 2 {
				if args[1] == "" {
					// An empty argument, such as an unset shell variable,
					// must not remove every value of the name.
					return usageError("the value to remove is empty: pass the value, or leave it out to remove every value of %s", args[0])
				}
				value = args[1]
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			if err := c.RemoveReferenceValue(cmd.Context(), args[0], value); err != nil {
				return err
			}
			if value == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "removed every value of %s\n", args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s = %s\n", args[0], value)
			}
			return nil
		},
	}
}
