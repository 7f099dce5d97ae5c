package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/store"
)

func init() { register(newSecretCmd) }

// adminFlags are the connection flags of the commands that call the admin
// API: secret, policy, refvalue and audit.
type adminFlags struct {
	opts   admin.ClientOptions
	output string
}

func (f *adminFlags) bind(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.opts.Server, "server", "", "URL of the Cloister service (default: $"+admin.ServerEnv+", else "+admin.DefaultServer+")")
	fl.StringVar(&f.opts.KeyFile, "admin-key-file", "", "file with the admin API key, or an admin token for a service started with --admin-token-keys (default: $"+admin.KeyEnv+", else admin.key in the default data directory)")
	fl.StringVar(&f.opts.CAFile, "ca-cert", "", "PEM CA certificates that verify an https server (default: system roots)")
	fl.StringVar(&f.opts.CertFile, "client-cert", "", "PEM client certificate for mutual TLS")
	fl.StringVar(&f.opts.CertKey, "client-key", "", "PEM private key of --client-cert")
	fl.DurationVar(&f.opts.Timeout, "timeout", 30*time.Second, "timeout of each request")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
}

func (f *adminFlags) client() (*admin.Client, error) {
	if f.output != "text" && f.output != "json" {
		return nil, usageError("invalid --output %q: use text or json", f.output)
	}
	c, err := f.opts.NewClient()
	if err != nil {
		return nil, usageError("%v", err)
	}
	return c, nil
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a tab-aligned writer; the caller must Flush it.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func newSecretCmd() *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage the secrets the key broker releases",
		Long: `Manage the secrets that the key broker releases to attested workloads.
A secret is named by its KBS resource path <repository>/<type>/<tag>.
Values can be written and deleted here but never read back: they leave the
service only through the key broker.`,
	}
	flags.bind(cmd)
	cmd.AddCommand(newSecretPutCmd(&flags), newSecretListCmd(&flags), newSecretRemoveCmd(&flags), newSecretRewrapCmd())
	return cmd
}

func newSecretPutCmd(flags *adminFlags) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "put PATH [--file FILE]",
		Short: "Store a secret, or a new version of it, from a file or standard input",
		Long: `Store the value read from --file, or from standard input when it is piped
or redirected from a file, as a new version of the secret at PATH. Values
are never taken as arguments, where they would stay in the shell history
and be visible to other users in the process list. Standard input that is
a terminal is not read, because the value would be echoed on the screen.`,
		Example: `  cloister secret put default/key/disk --file disk.key
  head -c 32 /dev/urandom | cloister secret put default/key/disk
  cloister secret put default/key/disk < disk.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				value []byte
				err   error
			)
			if file == "" {
				value, err = readPipedValue(cmd.InOrStdin())
			} else {
				value, err = readValue(cmd.InOrStdin(), file)
			}
			if err != nil {
				return err
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			info, err := c.PutSecret(cmd.Context(), args[0], value)
			if err != nil {
				return err
			}
			if flags.output == "json" {
				return printJSON(cmd.OutOrStdout(), info)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored %s version %d (%d bytes)\n", info.Path, info.Version, info.Size)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "file that contains the secret value; - reads standard input (default: standard input when it is not a terminal)")
	return cmd
}

// readPipedValue reads a secret value from stdin when no --file is given.
// It rejects a terminal or other character device, such as /dev/null, and
// empty input, because either means that no value was piped in.
func readPipedValue(stdin io.Reader) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok {
		info, err := f.Stat()
		if err != nil {
			return nil, usageError("read secret value from standard input: %v; pass --file FILE", err)
		}
		if info.Mode()&os.ModeCharDevice != 0 {
			return nil, usageError("no secret value: standard input is a terminal or a device such as /dev/null, not a pipe or file; pass --file FILE, or pipe the value in, such as: cloister secret put PATH < FILE")
		}
	}
	value, err := readValue(stdin, "-")
	if err != nil {
		return nil, err
	}
	if len(value) == 0 {
		return nil, usageError("no secret value: standard input is empty; pipe the value in, or pass --file FILE")
	}
	return value, nil
}

// readValue reads a secret value from path, or from stdin for "-", up to
// store.MaxSecretSize bytes.
func readValue(stdin io.Reader, path string) ([]byte, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError("read secret value: %v", err)
		}
		defer f.Close()
		r = f
	}
	value, err := io.ReadAll(io.LimitReader(r, store.MaxSecretSize+1))
	if err != nil {
		return nil, usageError("read secret value: %v", err)
	}
	if len(value) > store.MaxSecretSize {
		return nil, usageError("secret value is larger than the maximum of %d bytes", store.MaxSecretSize)
	}
	return value, nil
}

func newSecretListCmd(flags *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "ls [PREFIX]",
		Short: "List secrets (paths and versions, never values)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			list, err := c.ListSecrets(cmd.Context(), prefix)
			if err != nil {
				return err
			}
			if flags.output == "json" {
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "PATH\tVERSION\tSIZE\tMASTER KEY\tCREATED")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", s.Path, s.Version, s.Size, s.MasterKeyID, formatTime(s.Created))
			}
			return tw.Flush()
		},
	}
}

func newSecretRemoveCmd(flags *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm PATH",
		Short: "Delete every version of a secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			if err := c.DeleteSecret(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		},
	}
}

func newSecretRewrapCmd() *cobra.Command {
	var (
		dataDir, databaseURL string
		newKeyFile           string
		oldKeyFiles          []string
	)
	cmd := &cobra.Command{
		Use:   "rewrap --master-key-file NEW --old-master-key-file OLD (--data-dir DIR | --database-url URL)",
		Short: "Rotate the master key: wrap every secret's data key under a new master key",
		Long: `Rotate the master key directly in the database. Every secret data key wrapped
by one of the old master keys is unwrapped and wrapped again under the new
master key, in one transaction with an audit record; secret values are not
re-encrypted. Afterwards, start cloister serve with the new key
(--master-key-file or CLOISTER_MASTER_KEY). A service still running with an old
key cannot decrypt secrets until it restarts with the new one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (dataDir == "") == (databaseURL == "") {
				return usageError("give exactly one of --data-dir and --database-url")
			}
			if dataDir != "" {
				// Rewrapping needs existing secrets; do not create an empty
				// database in a mistyped directory.
				if _, err := os.Stat(filepath.Join(dataDir, store.SQLiteFile)); err != nil {
					return usageError("no database in --data-dir: %v", err)
				}
			}
			if newKeyFile == "" || len(oldKeyFiles) == 0 {
				return usageError("give the new key with --master-key-file and each old key with --old-master-key-file")
			}
			newKey, err := readMasterKeyFile(newKeyFile)
			if err != nil {
				return err
			}
			var oldKeys []*store.MasterKey
			for _, path := range oldKeyFiles {
				k, err := readMasterKeyFile(path)
				if err != nil {
					return err
				}
				oldKeys = append(oldKeys, k)
			}

			s, err := store.Open(cmd.Context(), store.Config{DataDir: dataDir, DatabaseURL: databaseURL,
				MasterKey: newKey, OldMasterKeys: oldKeys})
			if err != nil {
				return usageError("%v", err)
			}
			defer s.Close()
			n, err := s.RewrapSecrets(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rewrapped %d secret data keys under %s\n", n, newKey)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dataDir, "data-dir", "", "data directory of the SQLite database")
	fl.StringVar(&databaseURL, "database-url", "", "PostgreSQL database (postgres://...)")
	fl.StringVar(&newKeyFile, "master-key-file", "", "file with the new master key (base64 of 32 bytes, mode 0600)")
	fl.StringArrayVar(&oldKeyFiles, "old-master-key-file", nil, "file with a master key to rotate away from; repeatable")
	return cmd
}

func readMasterKeyFile(path string) (*store.MasterKey, error) {
	k, err := store.ReadMasterKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError("master key file %s not found; check the path given to --master-key-file or --old-master-key-file", path)
	}
	if err != nil {
		return nil, usageError("%v", err)
	}
	return k, nil
}
