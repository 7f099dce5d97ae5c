package collateral

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	bundleTCBKey = "pcs/tdx/tcb/90C06F000000"
	bundleCRLKey = "pcs/pckcrl/platform"
)

// writeTestBundle exports a cache that contains the corpus case's TCB Info and
// PCK CRL, fetched an hour ago, into a new directory.
func writeTestBundle(t *testing.T) (string, *Manifest) {
	t.Helper()
	fetched := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	tcbInfo := corpusFile(t, pcsCase+"/tcb_info.json")
	pckCRL := corpusFile(t, pcsCase+"/pck_crl.der")
	entries := []*Entry{
		{Key: bundleTCBKey, URL: "https://pcs.example.test/tdx/certification/v4/tcb?fmspc=90C06F000000",
			Body: tcbInfo, FetchedAt: fetched, NextUpdate: nextUpdateOf(tcbInfo),
			Headers: map[string]string{"TCB-Info-Issuer-Chain": string(corpusFile(t, pcsCase+"/tcb_info_issuer_chain.pem"))}},
		{Key: bundleCRLKey, URL: "https://pcs.example.test/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
			Body: pckCRL, FetchedAt: fetched, NextUpdate: nextUpdateOf(pckCRL)},
	}
	if entries[1].NextUpdate.IsZero() {
		t.Fatal("corpus PCK CRL states no nextUpdate")
	}
	return exportEntries(t, entries...)
}

// exportEntries stores entries in a new disk cache and exports it into a
// new directory, which it returns with the manifest.
func exportEntries(t *testing.T, entries ...*Entry) (string, *Manifest) {
	t.Helper()
	backend := DiskBackend{Dir: t.TempDir()}
	for _, e := range entries {
		if err := backend.Put(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	m, err := ExportBundle(context.Background(), backend, dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// bundleItem returns the manifest entry for key.
func bundleItem(t *testing.T, m *Manifest, key string) *ManifestEntry {
	t.Helper()
	for i := range m.Items {
		if m.Items[i].Key == key {
			return &m.Items[i]
		}
	}
	t.Fatalf("bundle has no item with key %s", key)
	return nil
}

// rewriteBundleFile replaces the file of me and updates its digest, as an
// edit of an unsigned bundle can.
func rewriteBundleFile(t *testing.T, dir string, me *ManifestEntry, body []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, me.File), body, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	me.SHA256 = hex.EncodeToString(sum[:])
}

func writeManifest(t *testing.T, dir string, m *Manifest) {
	t.Helper()
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImportBundleChecksEntries(t *testing.T) {
	crlNext := nextUpdateOf(corpusFile(t, pcsCase+"/pck_crl.der"))
	tests := []struct {
		name string
		edit func(t *testing.T, dir string, m *Manifest)
		// wantErr lists substrings of the expected error. None means
		// the import succeeds.
		wantErr []string
		// wantNextUpdate is the NextUpdate stored for the PCK CRL when
		// the import succeeds.
		wantNextUpdate time.Time
	}{
		{
			name:           "unchanged",
			edit:           func(*testing.T, string, *Manifest) {},
			wantNextUpdate: crlNext,
		},
		{
			name: "body not collateral",
			edit: func(t *testing.T, dir string, m *Manifest) {
				rewriteBundleFile(t, dir, bundleItem(t, m, bundleTCBKey), []byte("not collateral"))
			},
			wantErr: []string{bundleTCBKey, "contains no collateral", "export the bundle again"},
		},
		{
			name: "empty body",
			edit: func(t *testing.T, dir string, m *Manifest) {
				rewriteBundleFile(t, dir, bundleItem(t, m, bundleCRLKey), nil)
			},
			wantErr: []string{bundleCRLKey, "contains no collateral"},
		},
		{
			name: "fetch time in the future",
			edit: func(t *testing.T, dir string, m *Manifest) {
				bundleItem(t, m, bundleTCBKey).FetchedAt = time.Now().Add(24 * time.Hour)
			},
			wantErr: []string{bundleTCBKey, "fetched_at", "after the current time", "check the clocks"},
		},
		{
			name: "next update later than body",
			edit: func(t *testing.T, dir string, m *Manifest) {
				bundleItem(t, m, bundleCRLKey).NextUpdate = crlNext.Add(365 * 24 * time.Hour)
			},
			wantNextUpdate: crlNext,
		},
		{
			name: "next update missing",
			edit: func(t *testing.T, dir string, m *Manifest) {
				bundleItem(t, m, bundleCRLKey).NextUpdate = time.Time{}
			},
			wantNextUpdate: crlNext,
		},
		{
			name: "next update earlier than body",
			edit: func(t *testing.T, dir string, m *Manifest) {
				bundleItem(t, m, bundleCRLKey).NextUpdate = crlNext.Add(-time.Hour)
			},
			wantNextUpdate: crlNext.Add(-time.Hour),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, m := writeTestBundle(t)
			tt.edit(t, dir, m)
			writeManifest(t, dir, m)

			backend := DiskBackend{Dir: t.TempDir()}
			got, err := ImportBundle(context.Background(), dir, backend)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("import succeeded, want an error containing %q", tt.wantErr)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				// A rejected entry fails the whole import before
				// anything is stored.
				stored, listErr := backend.List(context.Background())
				if listErr != nil {
					t.Fatal(listErr)
				}
				if len(stored) != 0 {
					t.Errorf("rejected import stored %d entries, want none", len(stored))
				}
				return
			}
			if err != nil {
				t.Fatalf("import failed: %v", err)
			}
			e, err := backend.Get(context.Background(), bundleTCBKey)
			if err != nil {
				t.Fatal(err)
			}
			if e == nil {
				t.Fatal("TCB Info entry not stored")
			}
			if e.Headers["TCB-Info-Issuer-Chain"] == "" {
				t.Error("TCB Info issuer chain not stored")
			}
			crl, err := backend.Get(context.Background(), bundleCRLKey)
			if err != nil {
				t.Fatal(err)
			}
			if crl == nil {
				t.Fatal("PCK CRL entry not stored")
			}
			if !crl.NextUpdate.Equal(tt.wantNextUpdate) {
				t.Errorf("stored NextUpdate = %s, want %s", crl.NextUpdate, tt.wantNextUpdate)
			}
			if item := bundleItem(t, got, bundleCRLKey); !item.NextUpdate.Equal(tt.wantNextUpdate) {
				t.Errorf("returned manifest NextUpdate = %s, want %s", item.NextUpdate, tt.wantNextUpdate)
			}
		})
	}
}
