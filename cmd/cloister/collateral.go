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

// collateralFetch is the `cloister collateral fetch` command with its flags.
type collateralFetch struct {
	online          onlineFlags
	at              string
	fmspcs          []string
	tee, pckCA      string
	collateralPaths []string
	trustAnchors    []string
	format          string
}

func newCollateralFetchCmd() *cobra.Command {
	var f collateralFetch
	cmd := &cobra.Command{
		Use:   "fetch [flags] [EVIDENCE...]",
		Short: "Fetch the collateral that evidence files or FMSPCs need into the cache",
		Long: `Fetch into the cache the collateral each evidence file needs (found by
verifying it against the online source), and the Intel collateral of each
--fmspc. The verdict on the evidence is not judged here.

Evidence is read as 'cloister verify' reads it: in every format that verify
detects, or in the one --format names, with the files of --collateral and
--trust-anchor. Pass those files when the evidence lacks something its
verification needs, such as the device certificate chain of a single NVIDIA
GPU's report in hexadecimal.`,
		RunE: f.run,
	}
	f.online.bind(cmd)
	fl := cmd.Flags()
	fl.Lookup("online").Hidden = true
	fl.StringVar(&f.at, "at", "", "verification time the collateral must serve, RFC 3339 (default: now)")
	fl.StringArrayVar(&f.fmspcs, "fmspc", nil, "FMSPC (hex) whose Intel TCB Info to fetch; repeatable")
	fl.StringVar(&f.tee, "tee", "sgx", "TEE of the --fmspc values: sgx or tdx")
	fl.StringVar(&f.pckCA, "pck-ca", "processor", "PCK CA whose CRL to fetch: processor or platform")
	fl.StringArrayVar(&f.collateralPaths, "collateral", nil, collateralFlagHelp)
	fl.StringArrayVar(&f.trustAnchors, "trust-anchor", nil, trustAnchorFlagHelp)
	fl.StringVar(&f.format, "format", "", formatFlagHelp)
	return cmd
}

func (f *collateralFetch) run(cmd *cobra.Command, args []string) error {
	f.online.enabled = true
	src := f.online.source()
	when := time.Now()
	if f.at != "" {
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return usageError("invalid --at %q: use RFC 3339", f.at)
		}
		when = t
	}
	if len(args) == 0 && len(f.fmspcs) == 0 {
		return usageError("name evidence files or --fmspc values to fetch collateral for")
	}
	opts, err := f.options(src, when)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
	defer cancel()

	var failed []string
	for _, path := range args {
		data, err := readEvidence(cmd.InOrStdin(), path)
		if err != nil {
			return err
		}
		if !f.fetchEvidence(ctx, cmd.OutOrStdout(), path, data, opts) {
			failed = append(failed, path)
		}
	}
	for _, fmspc := range f.fmspcs {
		if !f.fetchFMSPC(ctx, cmd.OutOrStdout(), src, fmspc, when) {
			failed = append(failed, "FMSPC "+fmspc)
		}
	}
	if len(failed) > 0 {
		return &exitError{code: exitRejected, err: fmt.Errorf("collateral incomplete for %s; fix the cause printed for each, such as a missing --collateral or --format, "+
			"or --kds-url, --pcs-url or --ocsp-url naming a service that cannot be reached, or fetch on a connected machine and import a bundle", strings.Join(failed, ", "))}
	}
	return nil
}

// options returns the verification options of the evidence: the online
// source after the --collateral files, the --trust-anchor roots and the
// verification time. They are loaded as verify loads them.
func (f *collateralFetch) options(src *collateral.Online, when time.Time) (attest.Options, error) {
	if f.format != "" {
		if _, ok := attest.Lookup(f.format); !ok {
			return attest.Options{}, usageError("unknown --format %q; use one of %s", f.format, formatNames())
		}
	}
	set, err := loadCollateral("--collateral", f.collateralPaths, true)
	if err != nil {
		return attest.Options{}, err
	}
	anchors, err := loadCollateral("--trust-anchor", f.trustAnchors, false)
	if err != nil {
		return attest.Options{}, err
	}
	return attest.Options{At: when, Collateral: collateral.Sources{set, src}, TrustAnchors: anchors}, nil
}

// fetchEvidence fetches the collateral of one evidence file by verifying
// it, and reports whether the fetch is complete. Evidence whose format is
// not recognized fetches nothing, and malformed evidence or collateral
// stops the verification before it has fetched everything, so both count
// as incomplete too.
func (f *collateralFetch) fetchEvidence(ctx context.Context, w io.Writer, path string, data []byte, opts attest.Options) bool {
	claims, err := attest.Verify(ctx, attest.Evidence{Format: f.format, Data: data}, opts)
	switch {
	case errors.Is(err, attest.ErrUnsupported):
		fmt.Fprintf(w, "%s: nothing fetched: %v\n", path, err)
		return false
	case errors.Is(err, attest.ErrCollateralMissing):
		fmt.Fprintf(w, "%s: not all collateral could be fetched: %v\n", path, err)
		return false
	case errors.Is(err, attest.ErrMalformed):
		// The evidence, or collateral it needs, does not parse, so what
		// was fetched may not be all that it needs.
		fmt.Fprintf(w, "%s: collateral not known to be complete, because the evidence or its collateral does not parse: %v\n", path, err)
		return false
	}
	fmt.Fprintf(w, "%s: fetched (verification: %s)\n", path, verdictWord(err))
	printNotChecked(w, claims)
	return true
}

// fetchFMSPC fetches the Intel collateral of one FMSPC and reports whether
// it fetched the TCB Info.
func (f *collateralFetch) fetchFMSPC(ctx context.Context, w io.Writer, src *collateral.Online, fmspc string, when time.Time) bool {
	set, err := src.Collateral(ctx, collateral.Query{TEE: f.tee, FMSPC: fmspc, PCKCA: f.pckCA, At: when})
	if err == nil && len(set.OfKind(collateral.KindTCBInfo)) == 0 {
		err = fmt.Errorf("no TCB Info was fetched (%s)", strings.Join(set.Ignored, "; "))
	}
	if err != nil {
		fmt.Fprintf(w, "FMSPC %s: %v\n", fmspc, err)
		return false
	}
	fmt.Fprintf(w, "FMSPC %s: fetched\n", fmspc)
	for _, reason := range set.Ignored {
		fmt.Fprintf(w, "  not fetched: %s\n", reason)
	}
	return true
}

// formatNames returns the names of the registered evidence formats,
// comma-separated.
func formatNames() string {
	var names []string
	for _, v := range attest.Verifiers() {
		names = append(names, v.Name())
	}
	return strings.Join(names, ", ")
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
		Long: `Check each item of a bundle before storing any: its digest in the manifest,
that its body parses as collateral of the kind its cache key names (with the
FMSPC, product, chip and TCB of the key), that its dates are not in the future,
and that the first certificate of its issuer chain signed it. The manifest
itself is not signed, so import a bundle only from a source you trust.`,
		Args: cobra.ExactArgs(1),
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
