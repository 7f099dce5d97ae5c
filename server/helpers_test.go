package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/syncbuf"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/tee/snp"
)

// backend names one store the service suite runs against.
type backend struct {
	name string
	// config returns a store configuration; each call gives a fresh
	// database.
	config func(t testing.TB) store.Config
}

// backends returns SQLite and, when CLOISTER_TEST_POSTGRES_URL is set,
// PostgreSQL in a fresh schema per call. Without the variable PostgreSQL
// is skipped, except under CI, where the test fails.
func backends(t testing.TB) []backend {
	list := []backend{{name: "sqlite", config: func(t testing.TB) store.Config {
		return store.Config{DataDir: t.TempDir()}
	}}}
	base := os.Getenv("CLOISTER_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CLOISTER_TEST_POSTGRES_URL is not set under CI; run scripts/test, which starts PostgreSQL")
		}
		t.Log("CLOISTER_TEST_POSTGRES_URL is not set; skipping PostgreSQL (scripts/test starts one)")
		return list
	}
	return append(list, backend{name: "postgres", config: func(t testing.TB) store.Config {
		return store.Config{DatabaseURL: freshSchema(t, base)}
	}})
}

// freshSchema creates a schema with a random name, drops it when the test
// ends, and returns base with search_path set to it.
func freshSchema(t testing.TB, base string) string {
	t.Helper()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", base, err)
	}
	defer db.Close()
	suffix := make([]byte, 6)
	rand.Read(suffix)
	schema := "cloister_server_test_" + hex.EncodeToString(suffix)
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// clock is a settable time source shared by the store and the service.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// emulators are created once per test binary, because each generates two
// RSA-4096 keys.
var (
	emulatorsOnce sync.Once
	emulators     map[string]*snp.Emulator
	emulatorsErr  error
)

// testInitData is an init-data document whose SHA-384, cut to 32 bytes,
// the "initdata" emulator carries as HOST_DATA.
const testInitData = `version = "0.1.0"
algorithm = "sha384"

[data]
"policy.rego" = "package agent_policy"
`

// otherMeasurement is the launch measurement of the "unknown" emulator,
// which no reference value lists.
var otherMeasurement = make([]byte, 48)

func testEmulators(t testing.TB) map[string]*snp.Emulator {
	t.Helper()
	emulatorsOnce.Do(func() {
		for i := range otherMeasurement {
			otherMeasurement[i] = 0x5a
		}
		emulators = map[string]*snp.Emulator{}
		initDigest := sha512.Sum384([]byte(testInitData))
		for name, opts := range map[string]snp.EmulatorOptions{
			"good":     {},
			"debug":    {Debug: true},
			"unknown":  {Measurement: otherMeasurement},
			"initdata": {HostData: initDigest[:32]},
		} {
			e, err := snp.NewEmulator(opts)
			if err != nil {
				emulatorsErr = err
				return
			}
			emulators[name] = e
		}
	})
	if emulatorsErr != nil {
		t.Fatal(emulatorsErr)
	}
	return emulators
}

// testService is a running service on loopback with its store.
type testService struct {
	*httptest.Server
	store store.Store
	clock *clock
	srv   *Server
	// config is the Config srv was built from.
	config Config
}

type serviceOptions struct {
	allowEmulated bool
	// admin builds the admin API handler over the service's store.
	admin func(store.Store) http.Handler
	// pccs builds the PCCS API handler over the service's store.
	pccs func(store.Store) http.Handler
	// anchors and collateral are added to the emulated SEV-SNP roots.
	anchors    []*x509.Certificate
	collateral *collateral.Set
	// trustRequestID sets Config.TrustRequestID.
	trustRequestID bool
	// minEvaluationNumber sets Config.MinTCBEvaluationDataNumber.
	minEvaluationNumber uint32
}

const testSecretPath = "default/key/db"

var testSecret = []byte("postgres password: correct horse battery staple")

// startService opens a store from b, registers the good emulator's
// measurement as a reference value, stores testSecret, and serves the
// service on 127.0.0.1.
func startService(t testing.TB, b backend, o serviceOptions) *testService {
	t.Helper()
	ems := testEmulators(t)
	clk := &clock{}
	cfg := b.config(t)
	mk := make([]byte, store.MasterKeySize)
	rand.Read(mk)
	key, err := store.NewMasterKey(mk)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MasterKey = key
	cfg.Now = clk.Now
	cfg.Logger = quietLogger()
	ctx := context.Background()
	st, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s store: %v", b.name, err)
	}
	t.Cleanup(func() { st.Close() })

	anchors := &collateral.Set{}
	for _, e := range ems {
		anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "emulator", Raw: e.Root().Raw, Certificate: e.Root()})
	}
	for _, root := range o.anchors {
		anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "test", Raw: root.Raw, Certificate: root})
	}
	good := goodMeasurement(t)
	if _, err := st.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: good}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutSecret(ctx, testSecretPath, testSecret); err != nil {
		t.Fatal(err)
	}

	signingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var adminHandler, pccsHandler http.Handler
	if o.admin != nil {
		adminHandler = o.admin(st)
	}
	if o.pccs != nil {
		pccsHandler = o.pccs(st)
	}
	config := Config{
		Store: st, SigningKey: signingKey, AllowEmulated: o.allowEmulated, TrustAnchors: anchors, Collateral: o.collateral,
		TrustRequestID: o.trustRequestID, MinTCBEvaluationDataNumber: o.minEvaluationNumber,
		Admin: adminHandler, PCCS: pccsHandler, Logger: quietLogger(), Now: clk.Now,
	}
	srv, err := New(config)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &testService{Server: ts, store: st, clock: clk, srv: srv, config: config}
}

// replica starts a second service with ts's store, signing key, clock and
// options, as another replica behind the same load balancer would run.
func (ts *testService) replica(t testing.TB) *testService {
	t.Helper()
	srv, err := New(ts.config)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &testService{Server: hs, store: ts.store, clock: ts.clock, srv: srv, config: ts.config}
}

var (
	goodMeasurementOnce  sync.Once
	goodMeasurementValue string
)

// goodMeasurement returns the launch measurement the good emulator
// reports, read from its own evidence.
func goodMeasurement(t testing.TB) string {
	goodMeasurementOnce.Do(func() {
		ev, err := testEmulators(t)["good"].Attest(context.Background(), make([]byte, 64))
		if err != nil {
			t.Fatal(err)
		}
		r, err := snp.ParseReport(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		goodMeasurementValue = hex.EncodeToString(r.Measurement[:])
	})
	return goodMeasurementValue
}

// newClient returns a KBS client for the emulator named name that talks
// to ts with a cookie jar of its own.
func (ts *testService) newClient(t testing.TB, name string) *kbs.Client {
	return newKBSClient(ts.URL, ts.Client().Transport, testEmulators(t)[name])
}

// attestClient returns a KBS client for the emulator named name that has
// attested to ts, and the token it received.
func (ts *testService) attestClient(t testing.TB, name string) (*kbs.Client, string) {
	t.Helper()
	c := ts.newClient(t, name)
	token, err := c.Attest(context.Background())
	if err != nil {
		t.Fatalf("attest with emulator %s: %v", name, err)
	}
	return c, token
}

// newKBSClient returns a KBS client for the service at url that sends its
// requests through transport with a cookie jar of its own, so that clients
// sharing a transport keep separate sessions.
func newKBSClient(url string, transport http.RoundTripper, attester attest.Attester) *kbs.Client {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Transport: transport, Jar: jar}
	return &kbs.Client{URL: url, HTTPClient: hc, Attester: attester}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}

// logBuffer collects the JSON log lines that handlers write concurrently.
type logBuffer struct {
	syncbuf.Buffer
}

// lines returns the decoded log lines.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(b.String())), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// waitForLine returns the first log line with message msg and request ID
// id. The service writes it when the handler returns, which can be just
// after the client has read the response.
func (b *logBuffer) waitForLine(t *testing.T, msg, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(deadlineBound)
	for {
		for _, line := range b.lines(t) {
			if line["msg"] == msg && line["request_id"] == id {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q with request_id %q in:\n%s", msg, id, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startLogged starts a replica of ts that writes its log at debug level to
// the returned buffer. change, if not nil, edits the Config first.
func startLogged(t *testing.T, ts *testService, change func(*Config)) (*testService, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := ts.config
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if change != nil {
		change(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &testService{Server: hs, store: ts.store, clock: ts.clock, srv: srv, config: cfg}, logs
}
