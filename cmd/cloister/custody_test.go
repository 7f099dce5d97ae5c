package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/workload/custody"
)

// runSplit runs the cloister command line args within a minute and
// returns its standard output and standard error apart, for commands that
// write a file's content to standard output.
func runSplit(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// mustRun runs the cloister command line args and fails the test unless
// it succeeds. It returns the standard output.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runSplit(t, args...)
	if err != nil {
		t.Fatalf("cloister %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// custodyBroker is cloister serve as the custody workload's key broker,
// with its state in a data directory that outlives a restart.
type custodyBroker struct {
	dataDir string
	serve   *runningCommand
	url     string
}

// start runs cloister serve on the data directory, trusting the
// development roots of the emulated TEEs in teeDirs for SEV-SNP evidence
// only, as docs/workloads/custody.md does.
func (b *custodyBroker) start(t *testing.T, teeDirs ...string) {
	t.Helper()
	args := []string{"--data-dir", b.dataDir, "--allow-emulated"}
	for _, dir := range teeDirs {
		args = append(args, "--trust-anchor", "snp="+filepath.Join(dir, "ark.pem"))
	}
	b.serve, b.url = startKeyBroker(t, args...)
}

func (b *custodyBroker) admin(args ...string) []string {
	return append(args, "--server", b.url, "--admin-key-file", filepath.Join(b.dataDir, admin.KeyFile))
}

// setRelease stores the resource policy that releases the sealing key
// only to the measurement and the manifest digest.
func (b *custodyBroker) setRelease(t *testing.T, dir, measurement, digest string) {
	t.Helper()
	policy := mustRun(t, "custody", "release-policy", "--release", "custody/sealing/key:"+measurement+":"+digest)
	path := filepath.Join(dir, "release-"+digest+".rego")
	writeFile(t, path, policy)
	mustRun(t, b.admin("policy", "set", "default", path, "--kind", "resource")...)
}

// The pinning flow as an operator types it: a first start without pins,
// custody keys --pinned-manifest, a release policy for the new digest and
// a restart. The restarted workload has the same keys, fails when a
// sealed file is missing, also with --create-missing-keys, and starts
// again once the file is restored from a backup.
func TestCustodyPinnedManifestCommands(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("CLOISTER_DATABASE_URL", "")
	t.Setenv(admin.KeyEnv, "")
	t.Setenv(store.MasterKeyEnv, newTestKey(t).text)

	dir := t.TempDir()
	aliceKey, aliceHash := keygen(t, dir, "alice")
	manifest := writeFile(t, filepath.Join(dir, "custody.json"), `{
  "name": "treasury",
  "sealing_key": "custody/sealing/key",
  "parties": [{"name": "alice", "key_sha256": "`+aliceHash+`"}],
  "keys": [
    {"name": "release-signing", "type": "ed25519", "signers": ["alice"]},
    {"name": "btc-hot", "type": "secp256k1", "signers": ["alice"], "message_prefixes": ["tx:"]}
  ]
}`)
	measurement := strings.Repeat("cd", 48)
	teeDir := filepath.Join(dir, "tee")
	mustRun(t, "custody", "emulate", "--manifest", manifest, "--emulator-dir", teeDir, "--measurement", measurement)
	digest := strings.TrimSpace(mustRun(t, "custody", "hash", "--manifest", manifest))

	broker := &custodyBroker{dataDir: t.TempDir()}
	broker.start(t, teeDir)
	sealingKey := make([]byte, custody.SealingKeySize)
	rand.Read(sealingKey)
	sealingKeyFile := filepath.Join(dir, "sealing.key")
	writeFile(t, sealingKeyFile, string(sealingKey))
	mustRun(t, broker.admin("secret", "put", "custody/sealing/key", "--file", sealingKeyFile)...)
	mustRun(t, broker.admin("refvalue", "add", "snp.measurement", measurement)...)
	broker.setRelease(t, dir, measurement, digest)

	keysDir := filepath.Join(dir, "keys")
	serveArgs := func(manifest, teeDir, addr string) []string {
		return []string{"custody", "serve", "--manifest", manifest, "--keys-dir", keysDir, "--kbs", broker.url,
			"--emulated", "--emulator-dir", teeDir, "--listen", addr, "--log-level", "error"}
	}
	partyArgs := func(manifest, teeDir, addr string) []string {
		return []string{"custody", "keys", "--manifest", manifest, "--addr", addr, "--measurement", measurement,
			"--trust-anchor", "snp=" + filepath.Join(teeDir, "ark.pem"), "--allow-emulated", "--key", aliceKey}
	}

	// The first start generates the keys, and a party prints the manifest
	// with their public keys pinned.
	addr := freeAddr(t)
	first := startServe(t, serveArgs(manifest, teeDir, addr)...)
	var keys []custody.PublicKey
	if err := json.Unmarshal([]byte(mustRun(t, partyArgs(manifest, teeDir, addr)...)), &keys); err != nil {
		t.Fatal(err)
	}
	pinnedRaw, hint, err := runSplit(t, append(partyArgs(manifest, teeDir, addr), "--pinned-manifest")...)
	if err != nil {
		t.Fatalf("custody keys --pinned-manifest: %v\n%s", err, hint)
	}
	if err := first.stop(t); err != nil {
		t.Fatalf("custody serve: %v", err)
	}
	pinnedManifest := writeFile(t, filepath.Join(dir, "custody-pinned.json"), pinnedRaw)
	pinned, pinnedDigest, err := custody.ParseManifest([]byte(pinnedRaw))
	if err != nil {
		t.Fatalf("the pinned manifest does not parse: %v\n%s", err, pinnedRaw)
	}
	if pinnedDigest.String() == digest {
		t.Fatal("the pinned manifest has the digest of the manifest without pins")
	}
	if !strings.Contains(hint, pinnedDigest.String()) {
		t.Errorf("custody keys --pinned-manifest does not print the new digest %s on standard error:\n%s", pinnedDigest, hint)
	}
	if len(pinned.Keys) != len(keys) {
		t.Fatalf("the pinned manifest has %d keys, the workload %d", len(pinned.Keys), len(keys))
	}
	for i, k := range pinned.Keys {
		if want := base64.StdEncoding.EncodeToString(keys[i].PublicKey); k.Name != keys[i].Name || k.PublicKey != want {
			t.Errorf("key %s has public_key %q, want %s of key %s:\n%s", k.Name, k.PublicKey, want, keys[i].Name, pinnedRaw)
		}
	}
	if prefixes := pinned.Keys[1].MessagePrefixes; len(prefixes) != 1 || prefixes[0] != "tx:" {
		t.Errorf("the pinned manifest has message_prefixes %q for btc-hot, want [tx:]", prefixes)
	}

	// The operator binds the pinned manifest to a new emulated TEE, lets the
	// restarted broker trust it, and releases the sealing key to the new
	// digest only.
	pinnedTEE := filepath.Join(dir, "tee-pinned")
	mustRun(t, "custody", "emulate", "--manifest", pinnedManifest, "--emulator-dir", pinnedTEE, "--measurement", measurement)
	if err := broker.serve.stop(t); err != nil {
		t.Fatalf("cloister serve: %v", err)
	}
	broker.start(t, teeDir, pinnedTEE)
	broker.setRelease(t, dir, measurement, pinnedDigest.String())

	addr = freeAddr(t)
	restarted := startServe(t, serveArgs(pinnedManifest, pinnedTEE, addr)...)
	var restartedKeys []custody.PublicKey
	if err := json.Unmarshal([]byte(mustRun(t, partyArgs(pinnedManifest, pinnedTEE, addr)...)), &restartedKeys); err != nil {
		t.Fatal(err)
	}
	for i, k := range restartedKeys {
		if !bytes.Equal(k.PublicKey, keys[i].PublicKey) {
			t.Errorf("key %s changed across the restart with pins", k.Name)
		}
	}
	if err := restarted.stop(t); err != nil {
		t.Fatalf("custody serve: %v", err)
	}

	// The manifest without pins no longer receives the sealing key, so the
	// host cannot start it to generate new keys.
	unpinnedKeys := filepath.Join(dir, "keys-unpinned")
	out, errOut, err := runSplit(t, "custody", "serve", "--manifest", manifest, "--keys-dir", unpinnedKeys, "--kbs", broker.url,
		"--emulated", "--emulator-dir", teeDir, "--listen", freeAddr(t), "--log-level", "error")
	if code := exitCode(t, err); code != exitRejected || !strings.Contains(err.Error(), "policy") {
		t.Errorf("custody serve of the manifest without pins: exit code %d, error %v, want %d and a policy denial\n%s%s", code, err, exitRejected, out, errOut)
	}
	if entries, _ := os.ReadDir(unpinnedKeys); len(entries) != 0 {
		t.Errorf("the manifest without pins wrote %d files", len(entries))
	}

	// A removed sealed file stops the start, even with --create-missing-keys.
	sealed := filepath.Join(keysDir, "btc-hot.sealed.json")
	backup := filepath.Join(dir, "btc-hot.sealed.json.backup")
	if err := os.Rename(sealed, backup); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--create-missing-keys"}} {
		args := append(serveArgs(pinnedManifest, pinnedTEE, freeAddr(t)), extra...)
		out, errOut, err := runSplit(t, args...)
		if code := exitCode(t, err); code != exitRejected {
			t.Fatalf("custody serve %v without the pinned key's sealed file: exit code %d, want %d\n%s%s", extra, code, exitRejected, out, errOut)
		}
		for _, want := range []string{`key "btc-hot"`, "pins the key's public key", "restore it from a backup"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("custody serve %v: error %q does not contain %q", extra, err, want)
			}
		}
		if _, err := os.Stat(sealed); err == nil {
			t.Errorf("custody serve %v wrote a new sealed file for the pinned key", extra)
		}
	}

	// The file restored from the backup opens again.
	if err := os.Rename(backup, sealed); err != nil {
		t.Fatal(err)
	}
	addr = freeAddr(t)
	startServe(t, serveArgs(pinnedManifest, pinnedTEE, addr)...)
	mustRun(t, partyArgs(pinnedManifest, pinnedTEE, addr)...)
}
