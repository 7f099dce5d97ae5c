package aggregate

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"testing"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// testMeasurement is the emulated launch measurement of the workload in
// these tests.
var testMeasurement = workloadtest.Measurement("aggregate test workload")

func encodeManifest(t testing.TB, m Manifest) []byte {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// deployment is a running workload and what a party needs to reach it.
type deployment struct {
	addr     string
	tee      *workload.TEE
	manifest workload.Digest
}

// startWorkload serves the manifest raw in an emulated TEE on loopback.
func startWorkload(t testing.TB, raw []byte) *deployment {
	t.Helper()
	m, digest, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	tee := workloadtest.OpenEmulatedTEE(t, digest, testMeasurement)
	addr := workloadtest.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return Serve(ctx, ln, tee, m, digest, workloadtest.QuietLog())
	})
	return &deployment{addr: addr, tee: tee, manifest: digest}
}

// client returns a party's client that expects manifest, trusting the
// deployment's development root.
func (d *deployment) client(t testing.TB, cert tls.Certificate, manifest workload.Digest) *Client {
	t.Helper()
	return NewClient(workloadtest.NewClient(t, d.addr, workloadtest.Expect(d.tee, manifest, testMeasurement), cert))
}
