package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/internal/syncbuf"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/store/storetest"
	"github.com/cloister-dev/cloister/tee/snp"
)

// serveChildEnv carries the JSON command line of the cloister serve process
// that TestServeKilledKeepsAudit starts and kills.
const serveChildEnv = "CLOISTER_TEST_SERVE_CHILD_ARGS"

// TestServeChildProcess is the cloister serve process that
// TestServeKilledKeepsAudit kills with SIGKILL.
func TestServeChildProcess(t *testing.T) {
	raw := os.Getenv(serveChildEnv)
	if raw == "" {
		t.Skip("runs only as the serve process that TestServeKilledKeepsAudit kills")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatalf("%s: %v", serveChildEnv, err)
	}
	root := newRootCmd()
	root.SetOut(os.Stdout)
	root.SetErr(os.Stderr)
	root.SetArgs(args)
	err := root.Execute()
	t.Fatalf("serve returned while it should have been killed: %v", err)
}

// A service killed with SIGKILL while guests attest and fetch a secret
// loses no audit record. After a restart the chain verifies, and every
// token and every secret that a guest received has its record, because
// each record commits before the response is sent. The restarted service
// releases the secret again.
func TestServeKilledKeepsAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a service process; skipped with -short")
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("CLOISTER_DATABASE_URL", "")
	t.Setenv(admin.KeyEnv, "")
	t.Setenv(store.MasterKeyEnv, newTestKey(t).text)

	backends := []struct{ name, databaseURL string }{{name: "sqlite"}}
	if dbURL := storetest.PostgresURL(t, "cloister_crash_test"); dbURL != "" {
		backends = append(backends, struct{ name, databaseURL string }{"postgres", dbURL})
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testKilledService(t, b.databaseURL) })
	}
}

// emulatedGuest is an emulated SEV-SNP TEE whose development root and
// launch measurement a test registers with cloister serve.
type emulatedGuest struct {
	emulator *snp.Emulator
	// trustAnchor is the --trust-anchor value of cloister serve that
	// trusts the emulator's root.
	trustAnchor string
	// measurement is the hex launch measurement of the emulator's reports.
	measurement string
}

// newEmulatedGuest creates an emulated SEV-SNP TEE in dir/dev-tee with the
// cloister evidence command and reads its measurement with cloister
// inspect.
func newEmulatedGuest(t *testing.T, dir string) emulatedGuest {
	t.Helper()
	teeDir := filepath.Join(dir, "dev-tee")
	report := filepath.Join(dir, "report.bin")
	mustRun(t, "evidence", "--emulated", "--emulator-dir", teeDir, "--out", report)
	var inspected struct {
		Fields struct {
			Measurement string `json:"measurement"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "inspect", report)), &inspected); err != nil {
		t.Fatalf("inspect output: %v", err)
	}
	em, err := snp.LoadEmulator(teeDir)
	if err != nil {
		t.Fatal(err)
	}
	return emulatedGuest{emulator: em, trustAnchor: "snp=" + filepath.Join(teeDir, "ark.pem"), measurement: inspected.Fields.Measurement}
}

func testKilledService(t *testing.T, databaseURL string) {
	dir := t.TempDir()
	guest := newEmulatedGuest(t, dir)
	em := guest.emulator

	dataDir := filepath.Join(dir, "state")
	serveArgs := []string{"--data-dir", dataDir, "--allow-emulated", "--trust-anchor", guest.trustAnchor}
	if databaseURL != "" {
		serveArgs = append(serveArgs, "--database-url", databaseURL)
	}
	kill, serviceURL := startServeProcess(t, serveArgs)
	adminArgs := func(args ...string) []string {
		return append(args, "--server", serviceURL, "--admin-key-file", filepath.Join(dataDir, admin.KeyFile))
	}
	mustRun(t, adminArgs("refvalue", "add", "snp.measurement", guest.measurement)...)
	secretFile := writeFile(t, filepath.Join(dir, "secret.bin"), "the database password")
	mustRun(t, adminArgs("secret", "put", "default/key/db", "--file", secretFile)...)

	g := runGuests(t, serviceURL, em, 4)
	g.waitForReleases(t, 20, 60*time.Second)
	g.killed.Store(true)
	kill()
	g.stop()
	t.Logf("killed the service after %d tokens and %d releases", len(g.attested), len(g.released))

	serve, serviceURL := startKeyBroker(t, serveArgs...)
	defer serve.stop(t)
	auditArgs := []string{"audit", "verify", "--data-dir", dataDir}
	if databaseURL != "" {
		auditArgs = []string{"audit", "verify", "--database-url", databaseURL}
	}
	if out := mustRun(t, auditArgs...); !strings.Contains(out, "audit chain intact") {
		t.Errorf("audit verify after the kill:\n%s", out)
	}

	recorded := auditRequesters(t, dataDir, databaseURL)
	for ref := range g.attested {
		if !recorded[store.AuditAttest][ref] {
			t.Errorf("a guest received a token for %s, but the audit log has no attest record for it", ref)
		}
	}
	for ref := range g.released {
		if !recorded[store.AuditRelease][ref] {
			t.Errorf("a guest received the secret with %s, but the audit log has no release record for it", ref)
		}
	}

	after := &kbs.Client{URL: serviceURL, Attester: em, HTTPClient: &http.Client{Timeout: 30 * time.Second, Jar: newJar(t)}}
	if secret, err := after.Resource(context.Background(), "default/key/db"); err != nil || string(secret) != "the database password" {
		t.Errorf("after the restart: secret %q, error %v", secret, err)
	}
}

// startServeProcess runs cloister serve with args on a free loopback port
// in a child process of this test binary and waits until /healthz returns
// 200. It returns a function that kills the process with SIGKILL and waits
// for it to exit, which also runs when the test ends.
func startServeProcess(t *testing.T, args []string) (kill func(), serviceURL string) {
	t.Helper()
	addr := freeAddr(t)
	args = append([]string{"serve", "--listen", addr, "--log-level", "error"}, args...)
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+string(raw))
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Only this goroutine waits for the process, because a second Wait on
	// one exec.Cmd may block forever.
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	kill = func() {
		cmd.Process.Kill()
		<-exited
	}
	t.Cleanup(kill)

	serviceURL = "http://" + addr
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := client.Get(serviceURL + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return kill, serviceURL
			}
		}
		select {
		case <-exited:
			t.Fatalf("serve exited before it was healthy:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not healthy after 60 s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// guests are emulated SEV-SNP guests that run the KBS flow in a loop, each
// with a new session. They record the audit requesters of what they
// received: a token's session, and a secret's token.
type guests struct {
	mu       sync.Mutex
	attested map[string]bool // session references of received tokens
	released map[string]bool // token references of received secrets

	killed  atomic.Bool // the service was killed, so errors are expected
	stopped atomic.Bool
	wg      sync.WaitGroup
}

// runGuests starts n guests against the service at serviceURL.
func runGuests(t *testing.T, serviceURL string, em *snp.Emulator, n int) *guests {
	g := &guests{attested: map[string]bool{}, released: map[string]bool{}}
	for range n {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for !g.stopped.Load() {
				g.roundTrip(t, serviceURL, em)
			}
		}()
	}
	return g
}

// roundTrip runs one session's attestation and resource request and
// records what it received. Errors are expected once the service is killed,
// so a failed round trip only ends the session.
func (g *guests) roundTrip(t *testing.T, serviceURL string, em *snp.Emulator) {
	jar := newJar(t)
	c := &kbs.Client{URL: serviceURL, Attester: em, HTTPClient: &http.Client{Timeout: 30 * time.Second, Jar: jar}}
	ctx := context.Background()
	token, err := c.Attest(ctx)
	if err != nil {
		g.failed(t, err)
		return
	}
	g.mu.Lock()
	g.attested[sessionReference(t, jar, serviceURL)] = true
	g.mu.Unlock()

	secret, err := c.Resource(ctx, "default/key/db")
	if err != nil {
		g.failed(t, err)
		return
	}
	if string(secret) != "the database password" {
		t.Errorf("released secret %q, want the stored one", secret)
	}
	g.mu.Lock()
	g.released[tokenReference(t, token)] = true
	g.mu.Unlock()
}

// failed reports err as a test error unless the service was killed.
func (g *guests) failed(t *testing.T, err error) {
	if !g.killed.Load() {
		t.Errorf("round trip before the kill: %v", err)
	}
}

// waitForReleases waits until the guests received the secret n times.
func (g *guests) waitForReleases(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		g.mu.Lock()
		got := len(g.released)
		g.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guests received the secret %d times in %v, want %d", got, timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the guests' loops and waits for them.
func (g *guests) stop() {
	g.stopped.Store(true)
	g.wg.Wait()
}

func newJar(t *testing.T) *cookiejar.Jar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}

// sessionReference returns the audit requester of the KBS session whose
// cookie jar contains for serviceURL.
func sessionReference(t *testing.T, jar *cookiejar.Jar, serviceURL string) string {
	u, err := url.Parse(serviceURL + "/kbs/v0/")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range jar.Cookies(u) {
		if c.Name == kbs.SessionCookie {
			return store.SessionRef(c.Value)
		}
	}
	t.Errorf("no %s cookie after a successful attestation", kbs.SessionCookie)
	return ""
}

// tokenReference returns the audit requester of a release under token,
// which is "token:" followed by the token's jti.
func tokenReference(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Errorf("the token has %d parts, want 3", len(parts))
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Errorf("token payload: %v", err)
		return ""
	}
	var claims struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.ID == "" {
		t.Errorf("token payload has no jti: %v", err)
	}
	return "token:" + claims.ID
}

// auditRequesters reads the audit log from the database directly and
// returns the requesters of its records by action.
func auditRequesters(t *testing.T, dataDir, databaseURL string) map[store.AuditAction]map[string]bool {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{DataDir: dataDir, DatabaseURL: databaseURL, SkipMigrations: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	byAction := map[store.AuditAction]map[string]bool{}
	var after int64
	for {
		records, err := s.ListAudit(ctx, store.AuditQuery{AfterSeq: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(records) == 0 {
			return byAction
		}
		for _, r := range records {
			if byAction[r.Action] == nil {
				byAction[r.Action] = map[string]bool{}
			}
			byAction[r.Action][r.Requester] = true
			after = r.Seq
		}
	}
}
