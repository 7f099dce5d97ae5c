package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

func init() { register(newCollateralCmd) }

// onlineFlags configure fetching collateral from AMD KDS, Intel PCS and
// OCSP responders.
type onlineFlags struct {
	enabled  bool
	cacheDir string
	kdsURL   string
	pcsURL   string
	rootCRL  string
	ocspURL  string
	timeout  time.Duration
}

func (o *onlineFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&o.enabled, "online", false, "fetch missing collateral from AMD KDS and Intel PCS (or a PCCS), and OCSP responses for NVIDIA GPU and RIM certificates, through the cache")
	fl.StringVar(&o.cacheDir, "cache-dir", collateral.DefaultCacheDir(), "collateral cache directory")
	fl.StringVar(&o.kdsURL, "kds-url", collateral.DefaultKDSURL, "AMD KDS base URL")
	fl.StringVar(&o.pcsURL, "pcs-url", collateral.DefaultPCSURL, "Intel PCS or PCCS base URL")
	fl.StringVar(&o.rootCRL, "root-ca-crl-url", collateral.DefaultRootCACRLURL, "URL of the Intel SGX Root CA CRL")
	fl.StringVar(&o.ocspURL, "ocsp-url", "", "OCSP responder URL to send every OCSP request to, such as a mirror (default: the responder named in each certificate, or in the nearest CA certificate above it)")
	fl.DurationVar(&o.timeout, "fetch-timeout", 30*time.Second, "timeout of one HTTP request to a collateral service, and of all attempts of one OCSP request together")
}

func (o *onlineFlags) source() *collateral.Online {
	opts := collateral.FetcherOptions{Timeout: o.timeout}
	return &collateral.Online{
		Cache: &collateral.Cache{Backend: collateral.DiskBackend{Dir: o.cacheDir}},
		KDS:   collateral.NewKDS(o.kdsURL, opts),
		PCS:   collateral.NewPCS(o.pcsURL, o.rootCRL, opts),
		OCSP:  collateral.NewOCSP(o.ocspURL, opts),
	}
}

func newCollateralCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "collateral",
		Short: "Fetch, list, export and import vendor collateral",
		Long: `Manage the collateral cache: AMD VCEK/VLEK certificates, ASK/ARK chains and
CRLs from AMD KDS, Intel TCB Info, QE Identity and CRLs from Intel PCS or a
PCCS, and OCSP responses about NVIDIA GPU and RIM certificates. An exported
bundle is a directory that an air-gapped site passes to 'cloister verify
--collateral' as it is, or imports into its own cache.`,
	}
	cmd.AddCommand(newCollateralFetchCmd(), newCollateralLsCmd(), newCollateralExportCmd(), newCollateralImportCmd())
	return cmd
}

func newCollateralFetchCmd() *cobra.Command {
	var online onlineFlags
	var at string
	var fmspcs []string
	var tee, pckCA string
	cmd := &cobra.Command{
		Use:   "fetch [flags] [EVIDENCE...]",
		Short: "Fetch the collateral that evidence files or FMSPCs need into the cache",
		Long: `Fetch into the cache the collateral each evidence file needs (found by
verifying it against the online source), and the Intel collateral of each
--fmspc. The verdict on the evidence is not judged here.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			online.enabled = true
			src := online.source()
			when := time.Now()
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return usageError("invalid --at %q: use RFC 3339", at)
				}
				when = t
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			if len(args) == 0 && len(fmspcs) == 0 {
				return usageError("name evidence files or --fmspc values to fetch collateral for")
			}
			var failed []string
			for _, path := range args {
				data, err := readEvidence(cmd.InOrStdin(), path)
				if err != nil {
					return err
				}
				claims, verr := attest.Verify(ctx, attest.Evidence{Data: data}, attest.Options{At: when, Collateral: src})
				if errors.Is(verr, attest.ErrCollateralMissing) {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: not all collateral could be fetched: %v\n", path, verr)
					failed = append(failed, path)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: fetched (verification: %s)\n", path, verdictWord(verr))
				printNotChecked(cmd.OutOrStdout(), claims)
			}
			for _, f := range fmspcs {
				set, err := src.Collateral(ctx, collateral.Query{TEE: tee, FMSPC: f, PCKCA: pckCA, At: when})
				if err == nil && len(set.OfKind(collateral.KindTCBInfo)) == 0 {
					err = fmt.Errorf("no TCB Info was fetched (%s)", strings.Join(set.Ignored, "; "))
				}
				if err != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "FMSPC %s: %v\n", f, err)
					failed = append(failed, "FMSPC "+f)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "FMSPC %s: fetched\n", f)
				for _, reason := range set.Ignored {
					fmt.Fprintf(cmd.OutOrStdout(), "  not fetched: %s\n", reason)
				}
			}
			if len(failed) > 0 {
				return &exitError{code: exitRejected, err: fmt.Errorf("collateral incomplete for %s; check --pcs-url and --kds-url, or fetch on a connected machine and import a bundle", strings.Join(failed, ", "))}
			}
			return nil
		},
	}
	online.bind(cmd)
	cmd.Flags().Lookup("online").Hidden = true
	cmd.Flags().StringVar(&at, "at", "", "verification time the collateral must serve, RFC 3339 (default: now)")
	cmd.Flags().StringArrayVar(&fmspcs, "fmspc", nil, "FMSPC (hex) whose Intel TCB Info to fetch; repeatable")
	cmd.Flags().StringVar(&tee, "tee", "sgx", "TEE of the --fmspc values: sgx or tdx")
	cmd.Flags().StringVar(&pckCA, "pck-ca", "processor", "PCK CA whose CRL to fetch: processor or platform")
	return cmd
}

// printNotChecked lists the checks that could not run, such as an optional
// ocsp check whose responses were not served. A fetch can succeed and still
// leave the cache without what such a check needs.
func printNotChecked(w io.Writer, claims *attest.Claims) {
	if claims == nil {
		return
	}
	for _, c := range claims.Checks {
		if c.Result == attest.CheckNotChecked {
			fmt.Fprintf(w, "  not checked: %s: %s\n", c.Name, c.Detail)
		}
	}
}

func verdictWord(err error) string {
	if err == nil {
		return "verified"
	}
	return err.Error()
}

func newCollateralLsCmd() *cobra.Command {
	var cacheDir string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List cached collateral and when each item expires",
		RunE: func(cmd *cobra.Command, args []string) error {
			entries, err := collateral.DiskBackend{Dir: cacheDir}.List(cmd.Context())
			if err != nil {
				return usageError("reading cache %s: %v", cacheDir, err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY\tFETCHED\tNEXT UPDATE\tSTATE")
			now := time.Now()
			for _, e := range entries {
				next, state := "-", "valid"
				if !e.NextUpdate.IsZero() {
					next = e.NextUpdate.UTC().Format(time.RFC3339)
					if now.After(e.NextUpdate) {
						state = "expired"
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Key, e.FetchedAt.UTC().Format(time.RFC3339), next, state)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&cacheDir, "cache-dir", collateral.DefaultCacheDir(), "collateral cache directory")
	return cmd
}

func newCollateralExportCmd() *cobra.Command {
	var cacheDir string
	cmd := &cobra.Command{
		Use:   "export DIR",
		Short: "Write the cached collateral into a bundle directory with a manifest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cache := collateral.DiskBackend{Dir: cacheDir}
			// An empty cache gives a bundle that verifies nothing, and it
			// usually means another directory than the one fetch filled.
			entries, err := cache.List(cmd.Context())
			if err != nil {
				return usageError("read of the collateral cache %s failed: %v; make the directory readable, or name another with --cache-dir", cacheDir, err)
			}
			if len(entries) == 0 {
				return usageError("the collateral cache %s is empty, so there is nothing to export; fill it with "+
					"`cloister collateral fetch EVIDENCE...` (or --fmspc), or name the cache with --cache-dir", cacheDir)
			}
			m, err := collateral.ExportBundle(cmd.Context(), cache, args[0])
			if err != nil {
				return usageError("exporting bundle: %v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported %d items to %s; verify offline with --collateral %s\n", len(m.Items), args[0], args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&cacheDir, "cache-dir", collateral.DefaultCacheDir(), "collateral cache directory")
	return cmd
}

func newCollateralImportCmd() *cobra.Command {
	var cacheDir string
	cmd := &cobra.Command{
		Use:   "import DIR",
		Short: "Check a bundle against its manifest and store its items in the cache",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err != nil {
				return usageError("%v", err)
			}
			m, err := collateral.ImportBundle(cmd.Context(), args[0], collateral.DiskBackend{Dir: cacheDir})
			if err != nil {
				return &exitError{code: exitRejected, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d items into %s\n", len(m.Items), cacheDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&cacheDir, "cache-dir", collateral.DefaultCacheDir(), "collateral cache directory")
	return cmd
}
