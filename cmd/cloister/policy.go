package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/store"
)

func init() { register(newPolicyCmd) }

func newPolicyCmd() *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Manage Rego policies",
		Long: `Manage the service's Rego policies. Attestation policies (--kind attestation)
appraise verified evidence, and the service applies the one named after the
TEE (snp, tdx, sgx, nitro, tpm, ...). Resource policies (--kind resource)
decide which attested workloads may receive which secrets, and the service
applies the one named "default". Each set stores a new version with its
SHA-256 digest, and the service rejects a module that does not compile.`,
	}
	flags.bind(cmd)
	cmd.AddCommand(newPolicySetCmd(&flags), newPolicyGetCmd(&flags), newPolicyListCmd(&flags), newPolicyRemoveCmd(&flags),
		newPolicyDefaultCmd())
	return cmd
}

// newPolicyDefaultCmd prints a built-in policy, which the service applies
// while no policy of that name is stored, as a module that can be edited
// and stored with "policy set".
func newPolicyDefaultCmd() *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "default (TEE | --kind resource default)",
		Short: "Print the built-in policy for a TEE (or the built-in resource policy)",
		Long: `Print the built-in Rego module that the service applies while no policy of
that name is stored: the attestation policy of a TEE (snp, tdx, sgx, ...), or
with --kind resource the resource policy "default". The output can be edited
and stored with "cloister policy set". No server is contacted.`,
		Example: `  cloister policy default snp > snp.rego
  cloister policy default --kind resource default > resource.rego`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("policy default needs one argument: a TEE (one of %s), or default with --kind resource", teeList(policy.AttestationTEEs()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var m policy.Module
			switch store.PolicyKind(kind) {
			case store.PolicyAttestation:
				tee := attest.TEE(args[0])
				if !policy.IsAttestationTEE(args[0]) {
					return usageError("unknown TEE %q: use one of %s, or --kind resource default for the resource policy", args[0], teeList(policy.AttestationTEEs()))
				}
				m = policy.DefaultAttestation(tee)
			case store.PolicyResource:
				if args[0] != "default" {
					return usageError("the only built-in resource policy is named default, not %q", args[0])
				}
				m = policy.DefaultResource()
			default:
				return usageError("invalid --kind %q: use attestation or resource", kind)
			}
			_, err := fmt.Fprint(cmd.OutOrStdout(), m.Text)
			return err
		},
	}
	bindKind(cmd, &kind, string(store.PolicyAttestation))
	return cmd
}

// teeList returns the TEE names separated by commas.
func teeList(tees []attest.TEE) string {
	names := make([]string, len(tees))
	for i, t := range tees {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func bindKind(cmd *cobra.Command, kind *string, def string) {
	cmd.Flags().StringVar(kind, "kind", def, "policy kind: attestation or resource")
}

func newPolicySetCmd(flags *adminFlags) *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:     "set NAME FILE",
		Short:   "Store a Rego module as a new version of a policy",
		Example: `  cloister policy set default policy.rego --kind resource`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			module, err := os.ReadFile(args[1])
			if err != nil {
				return usageError("read policy: %v", err)
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			p, err := c.SetPolicy(cmd.Context(), store.PolicyKind(kind), args[0], string(module))
			if err != nil {
				return nameModuleFile(err, args[0], args[1])
			}
			if flags.output == "json" {
				p.Module = ""
				return printJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored %s policy %s version %d, sha256 %s\n", p.Kind, p.Name, p.Version, p.Digest)
			return nil
		},
	}
	bindKind(cmd, &kind, string(store.PolicyAttestation))
	return cmd
}

// nameModuleFile replaces <name>.rego in the compile errors of a problem
// document with file, the path the user gave, because the service compiles
// the policy as <name>.rego and an error in bad.rego would read "snp.rego:2:".
// It returns errors that are not problem documents unchanged.
func nameModuleFile(err error, name, file string) error {
	var p *admin.Problem
	if !errors.As(err, &p) {
		return err
	}
	moduleFile := regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(name+".rego") + `:(\d+)`)
	// The template doubles each $ in file, because $ starts a group
	// reference.
	renamed := *p
	renamed.Detail = moduleFile.ReplaceAllString(p.Detail, "${1}"+strings.ReplaceAll(file, "$", "$$")+":${2}")
	return &renamed
}

func newPolicyGetCmd(flags *adminFlags) *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Print the latest version of a policy's Rego module",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			p, err := c.GetPolicy(cmd.Context(), store.PolicyKind(kind), args[0])
			if err != nil {
				return err
			}
			if flags.output == "json" {
				return printJSON(cmd.OutOrStdout(), p)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), p.Module)
			return err
		},
	}
	bindKind(cmd, &kind, string(store.PolicyAttestation))
	return cmd
}

func newPolicyListCmd(flags *adminFlags) *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List policies with their latest version and digest",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			list, err := c.ListPolicies(cmd.Context(), store.PolicyKind(kind))
			if err != nil {
				return err
			}
			if flags.output == "json" {
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "KIND\tNAME\tVERSION\tSHA256\tCREATED")
			for _, p := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", p.Kind, p.Name, p.Version, p.Digest, formatTime(p.Created))
			}
			return tw.Flush()
		},
	}
	bindKind(cmd, &kind, "")
	cmd.Flags().Lookup("kind").Usage = "list only this kind: attestation or resource (default: all)"
	return cmd
}

func newPolicyRemoveCmd(flags *adminFlags) *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete every version of a policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			if err := c.DeletePolicy(cmd.Context(), store.PolicyKind(kind), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s policy %s\n", kind, args[0])
			return nil
		},
	}
	bindKind(cmd, &kind, string(store.PolicyAttestation))
	return cmd
}
