package collateral

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ManifestName is the file that describes a bundle directory.
const ManifestName = "manifest.json"

// Manifest describes a collateral bundle: a directory of collateral files
// that an air-gapped site can pass to `cloister verify --collateral` as it
// is, or import into its cache.
type Manifest struct {
	// Format identifies the manifest layout.
	Format  string          `json:"format"`
	Created time.Time       `json:"created"`
	Items   []ManifestEntry `json:"items"`
}

// ManifestEntry describes one file of a bundle.
type ManifestEntry struct {
	File string `json:"file"`
	// Key is the cache key the item was stored under.
	Key        string    `json:"key"`
	URL        string    `json:"url,omitempty"`
	SHA256     string    `json:"sha256"`
	FetchedAt  time.Time `json:"fetched_at"`
	NextUpdate time.Time `json:"next_update,omitempty"`
	// Headers lists issuer chains that came in response headers, stored
	// as extra PEM files.
	Headers map[string]string `json:"headers,omitempty"`
}

const manifestFormat = "cloister-collateral-bundle/v1"

// ExportBundle writes every entry of the backend into dir with a manifest.
// Self-signed certificates that an upstream sent (the ARK in a KDS
// cert_chain, the Intel root in a PCS issuer chain) are left out. A
// directory passed to --collateral makes its roots the caller's trust
// anchors, and a bundle must not carry trust that no one chose. Verifiers
// use their embedded vendor roots instead. An entry that contains nothing
// but such roots is left out, because ImportBundle rejects an empty body.
func ExportBundle(ctx context.Context, b Backend, dir string) (*Manifest, error) {
	entries, err := b.List(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &Manifest{Format: manifestFormat, Created: time.Now().UTC(), Items: []ManifestEntry{}}
	for _, e := range entries {
		e = withoutRoots(e)
		if len(e.Body) == 0 {
			continue
		}
		i := len(m.Items)
		sum := sha256.Sum256(e.Body)
		me := ManifestEntry{File: fmt.Sprintf("item-%03d%s", i, extensionFor(e.Body)), Key: e.Key, URL: e.URL,
			SHA256: hex.EncodeToString(sum[:]), FetchedAt: e.FetchedAt, NextUpdate: e.NextUpdate}
		if err := os.WriteFile(filepath.Join(dir, me.File), e.Body, 0o644); err != nil {
			return nil, err
		}
		for name, chain := range e.Headers {
			if strings.TrimSpace(chain) == "" {
				// The chain held only roots, and ImportBundle rejects
				// an empty one.
				continue
			}
			file := fmt.Sprintf("item-%03d-issuer-chain.pem", i)
			if err := os.WriteFile(filepath.Join(dir, file), []byte(chain), 0o644); err != nil {
				return nil, err
			}
			if me.Headers == nil {
				me.Headers = map[string]string{}
			}
			me.Headers[name] = file
		}
		m.Items = append(m.Items, me)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return m, os.WriteFile(filepath.Join(dir, ManifestName), data, 0o644)
}

// ImportBundle reads a bundle directory, checks every file against the
// manifest's digest and every entry with checkBundleEntry, and stores the
// entries in the backend. The manifest is not signed, so its digests catch
// corruption only, and the entry checks keep an edited manifest from
// storing an entry that the cache would not use as it is. Any file or entry that fails a check
// fails the whole import before anything is stored. A backend error while
// storing leaves the entries stored before it in place. The returned
// manifest carries the NextUpdate values as stored, after capping.
func ImportBundle(ctx context.Context, dir string, b Backend) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s, so it is not a bundle that cloister collateral export wrote; "+
			"pass a directory of collateral files to --collateral as it is: %w", dir, ManifestName, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading bundle manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("invalid bundle manifest %s: %w", filepath.Join(dir, ManifestName), err)
	}
	if m.Format != manifestFormat {
		return nil, fmt.Errorf("unsupported bundle format %q, expected %q", m.Format, manifestFormat)
	}
	now := time.Now()
	var entries []*Entry
	for i := range m.Items {
		me := &m.Items[i]
		body, err := readBundleFile(dir, me.File)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != me.SHA256 {
			return nil, fmt.Errorf("bundle file %s: SHA-256 %x differs from the manifest's %s; the bundle is corrupt or was modified",
				me.File, sum, me.SHA256)
		}
		var chains map[string]string
		for name, file := range me.Headers {
			chain, err := readBundleFile(dir, file)
			if err != nil {
				return nil, err
			}
			if chains == nil {
				chains = map[string]string{}
			}
			chains[name] = string(chain)
		}
		if err := checkBundleEntry(me, body, chains, now); err != nil {
			return nil, err
		}
		entries = append(entries, &Entry{Key: me.Key, URL: me.URL, Body: body, Headers: chains,
			FetchedAt: me.FetchedAt, NextUpdate: me.NextUpdate})
	}
	for _, e := range entries {
		if err := b.Put(ctx, e); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// checkBundleEntry applies the checks of Cache.checkCached to a bundle
// entry, so that an import fails instead of storing an entry that the cache
// would drop or correct, and checks the entry against its key:
//
//   - The body must contain collateral that Set.AddBytes identifies.
//   - The body must be what the key names (checkBundleKey).
//   - Each issuer chain must be one that accompanies the key's item and
//     must verify the body (checkBundleChains).
//   - FetchedAt must not be after now, because a future fetch time keeps
//     an entry fresh until then.
//   - A NextUpdate later than the body's own, or none where the body
//     states one, is capped in the manifest entry to the body's value.
//     The cap is not a rejection because an honest bundle can contain a
//     later value: for an OCSP response with several SingleResponses the
//     fetcher stores the end of the matching one, and the body's bound is
//     the earliest end.
func checkBundleEntry(me *ManifestEntry, body []byte, chains map[string]string, now time.Time) error {
	s := &Set{}
	if n, reason := s.AddBytes(me.URL, body); n == 0 {
		return fmt.Errorf("bundle file %s (key %q) contains no collateral: %s; "+
			"export the bundle again with cloister collateral export", me.File, me.Key, reason)
	}
	spec, err := checkBundleKey(me, s)
	if err != nil {
		return err
	}
	if err := checkBundleChains(me, spec, s, chains); err != nil {
		return err
	}
	if me.FetchedAt.After(now) {
		return fmt.Errorf("bundle file %s (key %q) has fetched_at %s, after the current time %s; "+
			"check the clocks of the exporting and the importing machine, then export the bundle again",
			me.File, me.Key, me.FetchedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if next := nextUpdateOf(body); !next.IsZero() && (me.NextUpdate.IsZero() || me.NextUpdate.After(next)) {
		me.NextUpdate = next
	}
	return nil
}

// bundleFix is the fix for an entry whose key and content disagree. The
// manifest is not signed, so the entry was edited or written by another
// program, and only a new export restores a consistent one.
const bundleFix = "export the bundle again with cloister collateral export from a cache that contains the item"

// checkBundleKey checks that the body parsed into s is the item that the
// entry's key names, and returns what the key states. The cache serves an
// entry by its key only, so a body under the wrong key would reach a
// verifier that asked for another item.
func checkBundleKey(me *ManifestEntry, s *Set) (*keySpec, error) {
	spec, err := parseCacheKey(me.Key)
	if err != nil {
		return nil, fmt.Errorf("bundle file %s has key %q, which names no item that Cloister fetches: %v; %s",
			me.File, me.Key, err, bundleFix)
	}
	mismatch := func(detail string) error {
		return fmt.Errorf("bundle file %s: key %q names %s, but the file contains %s%s; %s",
			me.File, me.Key, spec.description, describeBody(s), detail, bundleFix)
	}
	for _, it := range s.Items {
		if it.Kind != spec.kind {
			return nil, mismatch("")
		}
	}
	if spec.single && len(s.Items) != 1 {
		return nil, mismatch(fmt.Sprintf(", %d items where one is expected", len(s.Items)))
	}
	if spec.checkBody != nil {
		if err := spec.checkBody(s); err != nil {
			return nil, mismatch(" and " + err.Error())
		}
	}
	return spec, nil
}

// checkBundleChains checks the issuer chains of an entry: each must come in
// a header that accompanies the key's item, contain certificates only, and its
// first certificate must have signed the body. A chain is optional, because
// a PCCS may send none.
func checkBundleChains(me *ManifestEntry, spec *keySpec, s *Set, chains map[string]string) error {
	for name, chain := range chains {
		file := me.Headers[name]
		if !slices.Contains(spec.chainHeaders, name) {
			expected := "no issuer chain"
			if len(spec.chainHeaders) > 0 {
				expected = "the issuer chain header " + strings.Join(spec.chainHeaders, " or ")
			}
			return fmt.Errorf("bundle file %s (key %q) has issuer chain file %s as header %q, but %s comes with %s; %s",
				me.File, me.Key, file, name, spec.description, expected, bundleFix)
		}
		certs, err := parseChainPEM([]byte(chain), "issuer chain file "+file)
		if err != nil {
			return fmt.Errorf("bundle file %s (key %q): %w; %s", me.File, me.Key, err, bundleFix)
		}
		if err := checkSignedBy(s, certs[0]); err != nil {
			return fmt.Errorf("bundle file %s (key %q): the first certificate of issuer chain file %s, %q, did not sign %s: %v; %s",
				me.File, me.Key, file, certs[0].Subject.CommonName, spec.description, err, bundleFix)
		}
	}
	return nil
}

// readBundleFile reads a file named in a manifest, refusing names that
// leave the bundle directory.
func readBundleFile(dir, name string) ([]byte, error) {
	if name == "" || name != filepath.Base(name) {
		return nil, fmt.Errorf("invalid file name %q in bundle manifest", name)
	}
	return os.ReadFile(filepath.Join(dir, name))
}

func extensionFor(body []byte) string {
	s := &Set{}
	s.AddBytes("", body)
	if len(s.Items) == 0 {
		return ".bin"
	}
	switch s.Items[0].Kind {
	case KindTCBInfo, KindQEIdentity, KindJWKS, KindJSON:
		return ".json"
	case KindCRL:
		return ".crl"
	case KindOCSP:
		return ".ocsp"
	}
	if strings.Contains(string(body), "-----BEGIN ") {
		return ".pem"
	}
	return ".der"
}

// withoutRoots returns e with every self-signed certificate removed from
// its PEM body and issuer-chain headers.
func withoutRoots(e *Entry) *Entry {
	out := *e
	if strings.Contains(string(e.Body), "-----BEGIN ") {
		out.Body = stripSelfSigned(e.Body)
	}
	if len(e.Headers) > 0 {
		out.Headers = map[string]string{}
		for name, chain := range e.Headers {
			out.Headers[name] = string(stripSelfSigned([]byte(chain)))
		}
	}
	return &out
}

func stripSelfSigned(pemText []byte) []byte {
	var out []byte
	rest := pemText
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			if cert, err := x509.ParseCertificate(block.Bytes); err == nil && IsSelfSigned(cert) {
				continue
			}
		}
		out = append(out, pem.EncodeToMemory(block)...)
	}
	return out
}
