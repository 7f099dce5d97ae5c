package custody

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/tee/snp"
	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

const sealingPath = "custody/sealing/key"

// deployment is a custody manifest with its parties, the workload's TEE,
// an optional impostor TEE, and a key broker that trusts both.
type deployment struct {
	m        *Manifest
	digest   workload.Digest
	certs    map[string]tls.Certificate
	tee      *workload.TEE
	impostor *workload.TEE
	broker   *workloadtest.Broker
	keysDir  string
	opts     Options
}

// newDeployment builds a manifest with alice and bob and three keys,
// opens the workload's TEE, and stores the sealing key at the broker
// with a resource policy that releases it only to this measurement and
// manifest. With impostorMeasurement, it also opens a TEE with that
// launch measurement, bound to the same manifest.
func newDeployment(t *testing.T, impostorMeasurement []byte) *deployment {
	t.Helper()
	ctx := context.Background()
	aliceCert, alice := workloadtest.NewParty(t, "alice")
	bobCert, bob := workloadtest.NewParty(t, "bob")
	m := Manifest{
		Name: "treasury", SealingKey: sealingPath, Parties: []Party{alice, bob},
		Keys: []KeyPolicy{
			{Name: "release-signing", Type: Ed25519, Signers: []string{"alice"}},
			{Name: "api-p256", Type: ECDSAP256, Signers: []string{"alice", "bob"}},
			{Name: "btc-hot", Type: Secp256k1, Signers: []string{"bob"}, MessagePrefixes: []string{"tx:"}},
		},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	parsed, digest, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	tee := workloadtest.OpenEmulatedTEE(t, digest, workloadtest.Measurement("custody"))

	emulators := []*snp.Emulator{tee.Emulator}
	var impostor *workload.TEE
	if impostorMeasurement != nil {
		impostor = workloadtest.OpenEmulatedTEE(t, digest, impostorMeasurement)
		emulators = append(emulators, impostor.Emulator)
	}
	b := workloadtest.StartBroker(t, emulators...)
	sealingKey := make([]byte, SealingKeySize)
	rand.Read(sealingKey)
	if _, err := b.Admin.PutSecret(ctx, sealingPath, sealingKey); err != nil {
		t.Fatal(err)
	}
	policy, err := ReleasePolicy([]Release{{Path: sealingPath, Measurement: tee.Claims.Measurement, Manifest: digest}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Admin.SetPolicy(ctx, "resource", "default", policy); err != nil {
		t.Fatalf("storing the release policy: %v\n%s", err, policy)
	}
	return &deployment{m: parsed, digest: digest, tee: tee, impostor: impostor, broker: b, keysDir: t.TempDir(),
		certs: map[string]tls.Certificate{"alice": aliceCert, "bob": bobCert}}
}

// open runs custody.Open in tee against the deployment's broker.
func (d *deployment) open(t *testing.T, tee *workload.TEE) (*Service, error) {
	t.Helper()
	return Open(context.Background(), d.m, d.keysDir, d.broker.KBSClient(t, tee.Attester), workloadtest.QuietLog(), d.opts)
}

// serve opens the service in the deployment's TEE and serves it on
// loopback.
func (d *deployment) serve(t *testing.T) string {
	t.Helper()
	s, err := d.open(t, d.tee)
	if err != nil {
		t.Fatal(err)
	}
	return workloadtest.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return Serve(ctx, ln, d.tee, s, workloadtest.QuietLog())
	})
}

func (d *deployment) client(t *testing.T, addr, party string) *Client {
	t.Helper()
	expect := workloadtest.Expect(d.tee, d.digest, d.tee.Claims.Measurement)
	return NewClient(workloadtest.NewClient(t, addr, expect, d.certs[party]))
}

func apiStatus(err error) int {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}

// The whole flow: keys are generated in the TEE and sealed under the
// broker's key, each party signs with the keys its policy allows, and
// every signature verifies with the exported public key.
func TestCustodySignEndToEnd(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t, nil)
	addr := d.serve(t)
	alice, bob := d.client(t, addr, "alice"), d.client(t, addr, "bob")

	keys, err := alice.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("%d public keys, want 3", len(keys))
	}
	pubs := map[string]PublicKey{}
	for _, k := range keys {
		pubs[k.Name] = k
	}

	requests := []struct {
		client        *Client
		key           string
		message       string
		wantPublicLen int
	}{
		{alice, "release-signing", "release v1.2.3", 44},
		{alice, "api-p256", "GET /accounts", 91},
		{bob, "api-p256", "GET /accounts", 91},
		{bob, "btc-hot", "tx:0200000001", 33},
	}
	for _, r := range requests {
		resp, err := r.client.Sign(ctx, r.key, []byte(r.message))
		if err != nil {
			t.Errorf("sign with %s: %v", r.key, err)
			continue
		}
		pub := pubs[r.key]
		if len(pub.PublicKey) != r.wantPublicLen {
			t.Errorf("%s public key has %d bytes, want %d", r.key, len(pub.PublicKey), r.wantPublicLen)
		}
		if err := VerifySignature(pub.Type, pub.PublicKey, []byte(r.message), resp.Signature); err != nil {
			t.Errorf("%s: %v", r.key, err)
		}
		if err := VerifySignature(pub.Type, pub.PublicKey, []byte(r.message+"!"), resp.Signature); err == nil {
			t.Errorf("%s: the signature verifies over another message", r.key)
		}
	}

	// Only sealed files reach the disk.
	for name := range pubs {
		raw, err := os.ReadFile(filepath.Join(d.keysDir, name+".sealed.json"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSealedKey(raw); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A party that is not among a key's signers, and a message without the
// key's prefix, get no signature.
func TestCustodyRejectsUnauthorizedSigning(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t, nil)
	addr := d.serve(t)
	alice, bob := d.client(t, addr, "alice"), d.client(t, addr, "bob")

	_, err := alice.Sign(ctx, "btc-hot", []byte("tx:0200000001"))
	if apiStatus(err) != http.StatusForbidden {
		t.Errorf("alice signing with btc-hot: %v, want 403", err)
	}
	t.Logf("rejection: %v", err)
	_, err = bob.Sign(ctx, "release-signing", []byte("release v9"))
	if apiStatus(err) != http.StatusForbidden {
		t.Errorf("bob signing with release-signing: %v, want 403", err)
	}
	_, err = bob.Sign(ctx, "btc-hot", []byte("msg:not a transaction"))
	if apiStatus(err) != http.StatusForbidden || !strings.Contains(err.Error(), "prefix") {
		t.Errorf("bob signing without the tx: prefix: %v, want 403 naming the prefix", err)
	}
	t.Logf("rejection: %v", err)
	_, err = bob.Sign(ctx, "no-such-key", []byte("x"))
	if apiStatus(err) != http.StatusNotFound {
		t.Errorf("signing with an unknown key: %v, want 404", err)
	}

	stranger, _ := workloadtest.NewParty(t, "mallory")
	d.certs["mallory"] = stranger
	if _, err := d.client(t, addr, "mallory").Sign(ctx, "api-p256", []byte("x")); err == nil {
		t.Error("a key outside the manifest got a signature")
	}
}

// A restarted workload unseals the same keys instead of generating new
// ones.
func TestCustodyRestartUnsealsSameKeys(t *testing.T) {
	d := newDeployment(t, nil)
	first, err := d.open(t, d.tee)
	if err != nil {
		t.Fatal(err)
	}
	second, err := d.open(t, d.tee)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range first.PublicKeys() {
		if got := second.PublicKeys()[i]; string(got.PublicKey) != string(k.PublicKey) {
			t.Errorf("key %s changed across a restart", k.Name)
		}
	}
}

// A sealed file missing beside others stops the restart, because the host
// may have removed it, unless the operator asks for new keys.
func TestCustodyMissingSealedKeyStopsRestart(t *testing.T) {
	d := newDeployment(t, nil)
	first, err := d.open(t, d.tee)
	if err != nil {
		t.Fatal(err)
	}
	removed := first.PublicKeys()[0]
	path := filepath.Join(d.keysDir, removed.Name+".sealed.json")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	_, err = d.open(t, d.tee)
	if err == nil || !strings.Contains(err.Error(), "the sealed file is missing") || !strings.Contains(err.Error(), "--create-missing-keys") {
		t.Fatalf("restart without %s: err = %v, want one that names the missing file and the fix", path, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed restart wrote %s: %v", path, err)
	}

	d.opts.CreateMissing = true
	second, err := d.open(t, d.tee)
	if err != nil {
		t.Fatalf("restart with CreateMissing: %v", err)
	}
	for i, k := range second.PublicKeys() {
		changed := string(k.PublicKey) != string(first.PublicKeys()[i].PublicKey)
		if changed != (k.Name == removed.Name) {
			t.Errorf("key %s changed = %v, want a new key only for %s", k.Name, changed, removed.Name)
		}
	}
}

// A workload with another launch measurement, bound to the same manifest
// and signed by a root the broker trusts, attests successfully, but the
// resource policy does not release the sealing key to it.
func TestCustodyOtherMeasurementGetsNoSealingKey(t *testing.T) {
	d := newDeployment(t, workloadtest.Measurement("modified custody build"))
	_, err := d.open(t, d.impostor)
	if err == nil {
		t.Fatal("a workload with another measurement received the sealing key")
	}
	if !strings.Contains(err.Error(), "policy") {
		t.Errorf("error %q does not name the resource policy", err)
	}
	t.Logf("rejection: %v", err)
	if entries, _ := os.ReadDir(d.keysDir); len(entries) != 0 {
		t.Errorf("the rejected workload wrote %d files", len(entries))
	}

	// The denial's audit record names the measurement that did not match.
	denials, err := d.broker.Admin.ListAudit(context.Background(), store.AuditQuery{Action: store.AuditDeny})
	if err != nil {
		t.Fatal(err)
	}
	if len(denials) != 1 {
		t.Fatalf("%d deny records, want 1: %+v", len(denials), denials)
	}
	want := `measurement: the launch measurement is not the one that the release rule of ` + sealingPath + ` names`
	if !strings.Contains(denials[0].Reason, want) {
		t.Errorf("deny reason %q does not contain %q", denials[0].Reason, want)
	}
	if !strings.Contains(denials[0].Reason, `expected "`+hex.EncodeToString(d.tee.Claims.Measurement)+`"`) {
		t.Errorf("deny reason %q does not give the expected measurement", denials[0].Reason)
	}

	// The same broker releases the key to the real workload.
	if _, err := d.open(t, d.tee); err != nil {
		t.Fatal(err)
	}
}

// A sealed file that was modified, or sealed under another sealing key,
// stops Open instead of being replaced by a new key.
func TestCustodyRejectsTamperedSealedKey(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t, nil)
	if _, err := d.open(t, d.tee); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.keysDir, "api-p256.sealed.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := ParseSealedKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	sealed.Ciphertext[0] ^= 1
	if err := writeSealed(path, sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := d.open(t, d.tee); err == nil || !strings.Contains(err.Error(), "decryption failed") {
		t.Errorf("Open with a modified sealed key: %v, want a decryption failure", err)
	}

	// A new sealing key at the broker cannot open the old files either.
	sealed.Ciphertext[0] ^= 1
	if err := writeSealed(path, sealed); err != nil {
		t.Fatal(err)
	}
	newKey := make([]byte, SealingKeySize)
	rand.Read(newKey)
	if _, err := d.broker.Admin.PutSecret(ctx, sealingPath, newKey); err != nil {
		t.Fatal(err)
	}
	if _, err := d.open(t, d.tee); err == nil {
		t.Error("Open unsealed keys under another sealing key")
	}
}
