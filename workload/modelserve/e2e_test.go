package modelserve

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/snp"
	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/custody"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

const keyResource = "models/xor/key"

var testMeasurement = workloadtest.Measurement("modelserve test workload")

func exampleModel(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "model", "xor-mlp.json"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// deployment is the example model encrypted at rest, its key at a key
// broker whose resource policy releases it only to this workload, and
// the workload's TEE.
type deployment struct {
	m         *Manifest
	digest    workload.Digest
	model     string
	tee       *workload.TEE
	broker    *workloadtest.Broker
	party     tls.Certificate
	debug     *snp.Emulator
	untrusted *snp.Emulator
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	return newDeploymentWithGPUs(t, 0)
}

// newDeploymentWithGPUs is newDeployment whose TEE has gpus emulated
// GPUs, when gpus is positive. The broker then trusts the GPUs, and the
// release rule of the model key requires them.
func newDeploymentWithGPUs(t *testing.T, gpus int) *deployment {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, KeySize)
	rand.Read(key)
	enc, modelDigest, err := Encrypt(exampleModel(t), key, keyResource)
	if err != nil {
		t.Fatal(err)
	}
	modelPath := filepath.Join(t.TempDir(), "xor-mlp.enc.json")
	if err := os.WriteFile(modelPath, enc, 0o600); err != nil {
		t.Fatal(err)
	}

	partyCert, party := workloadtest.NewParty(t, "analyst")
	raw, err := json.Marshal(Manifest{Name: "xor", ModelSHA256: modelDigest, KeyResource: keyResource,
		Parties: []Party{party}})
	if err != nil {
		t.Fatal(err)
	}
	m, digest, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}

	tee, err := workload.OpenTEE(ctx, digest, workload.TEEOptions{Emulated: true, Measurement: testMeasurement, EmulatedGPUs: gpus})
	if err != nil {
		t.Fatal(err)
	}
	// The same workload in a guest launched with debugging on: the host
	// can read its memory, so it must not get the key.
	debug, err := snp.NewEmulator(snp.EmulatorOptions{Debug: true, Measurement: testMeasurement, HostData: digest[:]})
	if err != nil {
		t.Fatal(err)
	}
	var b *workloadtest.Broker
	if gpus > 0 {
		b = workloadtest.StartGPUBroker(t, tee.GPUs.Emulator, tee.Emulator, debug)
	} else {
		b = workloadtest.StartBroker(t, tee.Emulator, debug)
	}
	if _, err := b.Admin.PutSecret(ctx, keyResource, key); err != nil {
		t.Fatal(err)
	}
	rule := custody.Release{Path: keyResource, Measurement: testMeasurement, Manifest: digest, RequireGPU: gpus > 0}
	policy, err := custody.ReleasePolicy([]custody.Release{rule}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Admin.SetPolicy(ctx, "resource", "default", policy); err != nil {
		t.Fatal(err)
	}
	return &deployment{m: m, digest: digest, model: modelPath, tee: tee, broker: b, party: partyCert, debug: debug}
}

func (d *deployment) open(t *testing.T, attester attest.Attester) (*Service, error) {
	t.Helper()
	return Open(context.Background(), d.m, d.model, d.broker.KBSClient(t, attester), workloadtest.QuietLog())
}

// serve opens the service with a key broker client that attests the TEE
// and its GPUs, as cloister modelserve serve does, and serves it on
// loopback.
func (d *deployment) serve(t *testing.T) *Client {
	t.Helper()
	s, err := Open(context.Background(), d.m, d.model, d.broker.TEEClient(t, d.tee), workloadtest.QuietLog())
	if err != nil {
		t.Fatal(err)
	}
	addr := workloadtest.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return Serve(ctx, ln, d.tee, s, workloadtest.QuietLog())
	})
	return NewClient(workloadtest.NewClient(t, addr, workloadtest.Expect(d.tee, d.digest, testMeasurement), d.party))
}

// The encrypted model is decrypted only inside the attested workload,
// which serves the party's predictions: XOR of the two inputs.
func TestModelServeEndToEnd(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t)
	c := d.serve(t)

	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "xor-mlp" || info.Inputs != 2 || info.Outputs != 1 || info.ModelSHA256 != d.m.ModelSHA256 {
		t.Errorf("model info = %+v", info)
	}

	out, err := c.Predict(ctx, [][]float64{{0, 0}, {0, 1}, {1, 0}, {1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0, 1, 1, 0}
	for i, y := range out {
		if len(y) != 1 || math.Abs(y[0]-want[i]) > 1e-3 {
			t.Errorf("prediction %d = %v, want about %v", i, y, want[i])
		}
	}

	_, err = c.Predict(ctx, [][]float64{{1, 2, 3}})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Errorf("prediction of a 3-element input: %v, want 400", err)
	}
}

// A debug guest of the same workload attests, but the appraisal marks it
// and the resource policy releases nothing to it.
func TestModelKeyRejectedForDebugTEE(t *testing.T) {
	d := newDeployment(t)
	_, err := d.open(t, d.debug)
	if err == nil {
		t.Fatal("a debug TEE received the model key")
	}
	if !strings.Contains(err.Error(), "policy") {
		t.Errorf("error %q does not name the policy", err)
	}
	t.Logf("rejection: %v", err)
}

// A TEE whose development root the broker does not trust fails
// attestation and gets no key. A request without attestation gets none
// either.
func TestModelKeyRejectedForUnattestedTEE(t *testing.T) {
	d := newDeployment(t)
	stranger, err := snp.NewEmulator(snp.EmulatorOptions{Measurement: testMeasurement, HostData: d.digest[:]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.open(t, stranger); err == nil {
		t.Fatal("a TEE with an untrusted root received the model key")
	} else {
		t.Logf("rejection: %v", err)
	}

	resp, err := http.Get(d.broker.URL + "/kbs/v0/resource/" + keyResource)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("resource request without attestation: status %d, want 401", resp.StatusCode)
	}
}

// A model other than the one the manifest names is not served, even when
// it is encrypted under the released key.
func TestModelServeRejectsOtherModel(t *testing.T) {
	d := newDeployment(t)
	other := strings.Replace(string(exampleModel(t)), `"xor-mlp"`, `"not-xor"`, 1)
	// The key only leaves the broker to the workload, so the test reads
	// it the way the workload does.
	key, err := d.broker.KBSClient(t, d.tee.Attester).Resource(context.Background(), keyResource)
	if err != nil {
		t.Fatal(err)
	}
	enc, _, err := Encrypt([]byte(other), key, keyResource)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.model, enc, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = d.open(t, d.tee.Attester)
	if err == nil || !strings.Contains(err.Error(), "manifest names") {
		t.Fatalf("Open of another model: %v, want a digest mismatch", err)
	}
	t.Logf("rejection: %v", err)
}
