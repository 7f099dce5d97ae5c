package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/tee/composite"
)

// scopeHelp explains the TEE scope of --collateral and --trust-anchor
// arguments in help texts.
const scopeHelp = "; prefix TEE[,TEE]= (as in snp=ark.pem) to limit its items to those TEEs' evidence; a directory's subdirectories named after a TEE (snp/, tdx/, ...) are limited to that TEE"

// The help texts of --collateral, --trust-anchor and --format, which verify
// and collateral fetch read alike.
const (
	collateralFlagHelp  = "directory or file of collateral (certificates, CRLs, Intel TCB Info and QE Identity, keys, NVIDIA RIMs, OCSP responses), identified by content; repeatable" + scopeHelp
	trustAnchorFlagHelp = "root certificate or public key to trust explicitly, such as the development root of an emulated TEE; repeatable" + scopeHelp
	formatFlagHelp      = "evidence format, when detection is ambiguous"
)

// unprefixed returns flag without a client- prefix, such as --trust-anchor
// for --client-trust-anchor.
func unprefixed(flag string) string { return strings.Replace(flag, "--client-", "--", 1) }

// emptyCollateralFix names what each flag's files should contain, by the
// unprefixed flag name.
var emptyCollateralFix = map[string]string{
	"--trust-anchor": "pass a PEM or DER root certificate or public key, or a JWK Set",
	"--collateral":   "pass PEM or DER certificates, CRLs or public keys, JWK Sets, Intel's TCB Info and QE Identity JSON, NVIDIA RIMs or successful OCSP responses",
}

// loadCollateral loads every argument of the repeatable flag into one set.
// An argument is a file or directory, optionally scoped as TEE[,TEE]=PATH,
// which limits its items to those TEEs' evidence. A root scoped to one TEE
// so never anchors another TEE's chain. A directory also contributes its
// subdirectories named after a TEE, each scoped to that TEE. A file
// without any item is an error, and so is a directory without any item
// when allowEmpty is false.
func loadCollateral(flag string, args []string, allowEmpty bool) (*collateral.Set, error) {
	set := &collateral.Set{}
	for _, arg := range args {
		tees, path, err := splitTEEScope(arg)
		if err != nil {
			return nil, usageError("%s %q: %v", flag, arg, err)
		}
		s, err := loadScopedPath(path, tees)
		if err != nil {
			return nil, usageError("%s: %v", flag, err)
		}
		// A directory may hold other files too, but a file named on its
		// own that holds no collateral is a mistake, and the verifier
		// would otherwise report only what it misses.
		if len(s.Items) == 0 && (!allowEmpty || isRegularFile(path)) {
			return nil, usageError("%s %s contains no certificate, public key or collateral document%s%s; %s",
				flag, path, ignoredReason(s), otherSubdirectories(path), emptyCollateralFix[unprefixed(flag)])
		}
		set.Merge(s)
	}
	return set, nil
}

// isRegularFile reports whether path names a regular file.
func isRegularFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// ignoredReason returns why the loader ignored the files of s, in
// brackets, or "" when it gave no reason.
func ignoredReason(s *collateral.Set) string {
	if len(s.Ignored) == 0 {
		return ""
	}
	return " (" + strings.Join(s.Ignored, "; ") + ")"
}

// unscopableTEEs maps the TEEs whose verifiers query no collateral of
// their own to the reason, which names the TEEs that apply instead.
var unscopableTEEs = map[attest.TEE]string{
	attest.TEEAzureVTPM: "the SEV-SNP or TDX report of Azure vTPM evidence is verified as snp or tdx; use those names",
	composite.TEE:       "the parts of composite evidence are verified as snp, tdx or sgx for the CPU and nvidia-gpu for the GPUs; use those names",
}

// splitTEEScope splits TEE[,TEE]=PATH into its TEE names and PATH. An
// argument that names an existing file, or whose text before the first '='
// contains a character other than lowercase letters, digits, '-' and ',',
// is a path as a whole, such as ./a=b.pem or Roots=1.pem.
func splitTEEScope(arg string) ([]string, string, error) {
	if _, err := os.Stat(arg); err == nil {
		return nil, arg, nil // a file or directory whose name contains '='
	}
	prefix, path, ok := strings.Cut(arg, "=")
	if !ok || strings.ContainsFunc(prefix, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == ',')
	}) {
		return nil, arg, nil
	}
	var tees []string
	for name := range strings.SplitSeq(prefix, ",") {
		if hint, ok := unscopableTEEs[attest.TEE(name)]; ok {
			return nil, "", fmt.Errorf("%s before '=' limits nothing, because %s", name, hint)
		}
		if !slices.Contains(attest.KnownTEEs(), attest.TEE(name)) {
			return nil, "", fmt.Errorf("unknown TEE %q before '='; use one or more of %s, separated by commas, as in snp=ark.pem", name, knownTEENames())
		}
		tees = append(tees, name)
	}
	if path == "" {
		return nil, "", fmt.Errorf("no path after %q", prefix+"=")
	}
	return tees, path, nil
}

// loadScopedPath loads path scoped to tees. A directory also loads its
// subdirectories named after a TEE, scoped to that TEE. In a directory
// scoped to other TEEs, such a subdirectory is an error, because its items
// would serve no TEE.
func loadScopedPath(path string, tees []string) (*collateral.Set, error) {
	set, err := collateral.LoadPath(path)
	if err != nil {
		return nil, err
	}
	set.ScopeTo(tees)
	entries, err := os.ReadDir(path)
	if err != nil {
		return set, nil // a file: LoadPath has read it
	}
	for _, e := range entries {
		sub := filepath.Join(path, e.Name())
		if _, ok := unscopableTEEs[attest.TEE(e.Name())]; ok || !slices.Contains(attest.KnownTEEs(), attest.TEE(e.Name())) {
			continue
		}
		if info, err := os.Stat(sub); err != nil || !info.IsDir() {
			continue
		}
		if len(tees) > 0 && !slices.Contains(tees, e.Name()) {
			return nil, fmt.Errorf("%s is limited to %s, which excludes its subdirectory %s; pass that subdirectory as its own argument, or drop the TEE prefix", path, strings.Join(tees, ","), e.Name())
		}
		s, err := collateral.LoadPath(sub)
		if err != nil {
			return nil, err
		}
		s.ScopeTo([]string{e.Name()})
		set.Merge(s)
	}
	return set, nil
}

// otherSubdirectories names the subdirectories of path that were not read
// because they are not named after a TEE, or returns "".
func otherSubdirectories(path string) string {
	entries, err := os.ReadDir(path)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && !slices.Contains(attest.KnownTEEs(), attest.TEE(e.Name())) {
			names = append(names, e.Name()+"/")
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(" (its subdirectories %s were not read, because only those named after a TEE are: %s)", strings.Join(names, ", "), knownTEENames())
}

// knownTEENames returns the TEE names that a scope may use, comma-separated.
func knownTEENames() string {
	var names []string
	for _, t := range attest.KnownTEEs() {
		if _, ok := unscopableTEEs[t]; !ok {
			names = append(names, string(t))
		}
	}
	return strings.Join(names, ", ")
}

// warnUnscopedAnchors logs every root certificate, public key and JWK Set
// in sets that is not scoped to a TEE, because it anchors the evidence of
// every TEE and replaces every TEE's embedded roots. That holds for an
// emulated development root too, which then makes the service reject real
// hardware evidence.
func warnUnscopedAnchors(logger *slog.Logger, sets ...*collateral.Set) {
	for _, set := range sets {
		for _, it := range set.Items {
			if len(it.TEEs) > 0 || !isAnchor(it) {
				continue
			}
			logger.Warn("trust anchor serves the evidence of every TEE and replaces their embedded roots", "kind", it.Kind, "source", it.Source,
				"fix", "limit it to the TEE it is for, as in --trust-anchor snp=ark.pem, or move it into a subdirectory named after that TEE (snp/, tdx/, ...)")
		}
	}
}

// isAnchor reports whether the item can anchor evidence: a root
// certificate, a public key or a JWK Set.
func isAnchor(it *collateral.Item) bool {
	switch it.Kind {
	case collateral.KindCertificate:
		return it.IsSelfSignedCertificate()
	case collateral.KindPublicKey, collateral.KindJWKS:
		return true
	}
	return false
}
