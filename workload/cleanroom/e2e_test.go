package cleanroom

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

var buildMeasurement = workloadtest.Measurement("clean-room test build")

// tees holds one emulated TEE per manifest digest, shared by the tests,
// because each emulator generates two RSA-4096 keys.
var (
	teesMu sync.Mutex
	tees   = map[workload.Digest]*workload.TEE{}
)

func sharedTEE(t *testing.T, d workload.Digest) *workload.TEE {
	t.Helper()
	teesMu.Lock()
	defer teesMu.Unlock()
	if tee, ok := tees[d]; ok {
		return tee
	}
	tee := workloadtest.OpenEmulatedTEE(t, d, buildMeasurement)
	tees[d] = tee
	return tee
}

// testRoom is a clean room served over RA-TLS from an emulated TEE on
// 127.0.0.1.
type testRoom struct {
	addr string
	tee  *workload.TEE
	room *Room
}

func startRoom(t *testing.T, manifest []byte) *testRoom {
	t.Helper()
	m, d, err := ParseManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	tee := sharedTEE(t, d)
	room, err := NewRoom(context.Background(), m, d, Options{Log: workloadtest.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first, so the room closes after Serve returned.
	t.Cleanup(func() { room.Close() })
	addr := workloadtest.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return Serve(ctx, ln, tee, room, workloadtest.QuietLog())
	})
	return &testRoom{addr: addr, tee: tee, room: room}
}

func exampleKey(t testing.TB, party string) crypto.Signer {
	t.Helper()
	key, err := workload.LoadKey(filepath.Join(exampleDir, "keys", party+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// client returns party's client, which trusts the room's emulated root and
// expects measurement.
func (tr *testRoom) client(t *testing.T, manifest []byte, party string, key crypto.Signer, measurement []byte) *Client {
	t.Helper()
	// NewClient sets Expect.Manifest from the manifest.
	c, err := NewClient(ClientConfig{
		Addr: tr.addr, Manifest: manifest, Party: party, Key: key,
		Expect: workloadtest.Expect(tr.tee, workload.Digest{}, measurement),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// banks returns the clients of the example's parties bank-a and bank-b,
// each with its example key and the build measurement.
func (tr *testRoom) banks(t *testing.T, manifest []byte) (a, b *Client) {
	t.Helper()
	a = tr.client(t, manifest, "bank-a", exampleKey(t, "bank-a"), buildMeasurement)
	b = tr.client(t, manifest, "bank-b", exampleKey(t, "bank-b"), buildMeasurement)
	return a, b
}

// uploadExample uploads the example CSV file of table through c.
func uploadExample(t *testing.T, c *Client, table string) *UploadResponse {
	t.Helper()
	up, err := c.Upload(context.Background(), table, bytes.NewReader(readExample(t, table+".csv")))
	if err != nil {
		t.Fatal(err)
	}
	return up
}

func TestCleanRoomEndToEnd(t *testing.T) {
	manifest := readExample(t, "manifest.json")
	tr := startRoom(t, manifest)
	ctx := context.Background()
	a, b := tr.banks(t, manifest)

	uploadExample(t, a, "bank_a_fraud")
	_, _, err := a.Result(ctx)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict || !strings.Contains(se.Message, "bank_b_fraud") {
		t.Fatalf("result before bank-b uploaded: %v, want HTTP 409 naming bank_b_fraud", err)
	}
	status, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(status.Missing) != 1 {
		t.Errorf("status lists missing tables %v, want only bank_b_fraud", status.Missing)
	}
	if up := uploadExample(t, b, "bank_b_fraud"); up.Rows != 400 {
		t.Errorf("bank-b uploaded %d rows, want 400", up.Rows)
	}

	for _, c := range []*Client{a, b} {
		res, _, err := c.Result(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) == 0 || res.Suppressed == 0 {
			t.Errorf("result has %d rows and %d suppressed groups, want both above zero", len(res.Rows), res.Suppressed)
		}
		_, d := tr.room.Manifest()
		if res.Manifest != d {
			t.Errorf("result names manifest %s, want %s", res.Manifest, d)
		}
	}
	select {
	case <-tr.room.Done():
	default:
		t.Error("the room is not done after both recipients read the result")
	}
}

func TestCleanRoomRejectsOtherManifest(t *testing.T) {
	manifest := readExample(t, "manifest.json")
	tr := startRoom(t, manifest)
	lower := editManifest(t, func(m map[string]any) { m["min_group_size"] = 1 })
	c := tr.client(t, lower, "bank-a", exampleKey(t, "bank-a"), buildMeasurement)

	_, err := c.Upload(context.Background(), "bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv")))
	if err == nil {
		t.Fatal("upload to a workload bound to another manifest succeeded")
	}
	_, bound, _ := ParseManifest(manifest)
	_, agreed, _ := ParseManifest(lower)
	for _, d := range []workload.Digest{bound, agreed} {
		if !strings.Contains(err.Error(), d.String()) {
			t.Errorf("error does not name digest %s: %v", d, err)
		}
	}
	if missing := tr.room.Missing(); len(missing) != 2 {
		t.Errorf("the room received data: missing tables %v", missing)
	}
}

func TestCleanRoomRejectsOtherMeasurement(t *testing.T) {
	manifest := readExample(t, "manifest.json")
	tr := startRoom(t, manifest)
	other := workloadtest.Measurement("another build")
	c := tr.client(t, manifest, "bank-a", exampleKey(t, "bank-a"), other)

	_, err := c.Upload(context.Background(), "bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv")))
	if err == nil || !strings.Contains(err.Error(), "measurement") {
		t.Fatalf("upload to a workload with another measurement: %v, want a measurement rejection", err)
	}
	if missing := tr.room.Missing(); len(missing) != 2 {
		t.Errorf("the room received data: missing tables %v", missing)
	}
}

func TestCleanRoomRejectsStranger(t *testing.T) {
	manifest := readExample(t, "manifest.json")
	tr := startRoom(t, manifest)
	stranger, _, err := workload.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	strangerHash, _ := workload.KeyHash(stranger.Public())

	// The client itself rejects a key that the manifest does not list.
	_, err = NewClient(ClientConfig{Addr: tr.addr, Manifest: manifest, Party: "bank-a", Key: stranger,
		Expect: workload.Expect{Measurement: buildMeasurement}})
	if err == nil || !strings.Contains(err.Error(), strangerHash.String()) {
		t.Errorf("NewClient with a key not in the manifest: %v, want an error naming %s", err, strangerHash)
	}

	// A stranger that skips that check, with the right manifest, is
	// rejected by the workload in the TLS handshake.
	_, digest, _ := ParseManifest(manifest)
	cert, err := workload.ClientCertificate(stranger, "stranger")
	if err != nil {
		t.Fatal(err)
	}
	wc := workloadtest.NewClient(t, tr.addr, workloadtest.Expect(tr.tee, digest, buildMeasurement), cert)
	_, err = wc.HTTPClient().Get("https://workload" + PathStatus)
	if err == nil {
		t.Fatal("a key that is not in the workload's manifest was accepted")
	}
	if !strings.Contains(err.Error(), strangerHash.String()) {
		t.Errorf("error does not name the rejected key %s: %v", strangerHash, err)
	}
}

func TestCleanRoomRejectsNonRecipient(t *testing.T) {
	manifest := editManifest(t, func(m map[string]any) { m["recipients"] = []string{"bank-a"} })
	tr := startRoom(t, manifest)
	ctx := context.Background()
	a, b := tr.banks(t, manifest)
	uploadExample(t, a, "bank_a_fraud")
	uploadExample(t, b, "bank_b_fraud")

	_, _, err := b.Result(ctx)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Message, "not a recipient") {
		t.Fatalf("result for bank-b, not a recipient: %v, want HTTP 403", err)
	}
	if _, _, err := a.Result(ctx); err != nil {
		t.Errorf("result for bank-a, a recipient: %v", err)
	}
}

func TestCleanRoomRejectsOtherPartysTable(t *testing.T) {
	manifest := readExample(t, "manifest.json")
	tr := startRoom(t, manifest)
	b := tr.client(t, manifest, "bank-b", exampleKey(t, "bank-b"), buildMeasurement)

	// The client refuses first; the raw request shows the server does too.
	if _, err := b.Upload(context.Background(), "bank_a_fraud", strings.NewReader("x")); err == nil {
		t.Fatal("bank-b uploaded bank-a's table")
	}
	_, err := b.do(context.Background(), http.MethodPut, PathTables+"bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv")), &UploadResponse{})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("raw upload of bank-a's table by bank-b: %v, want HTTP 403", err)
	}
}
