package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/ratls"
	"github.com/cloister-dev/cloister/tee/snp"
)

// The test binary doubles as the workload: an unmodified net/http server
// without any TLS or attestation code, which and serves the secret it finds
// in $CLOISTER_SECRETS_DIR and in its environment.
const workloadEnv = "CLOISTER_AGENT_TEST_WORKLOAD"

func TestMain(m *testing.M) {
	if addr := os.Getenv(workloadEnv); addr != "" {
		runWorkload(addr)
		return
	}
	os.Exit(m.Run())
}

func runWorkload(addr string) {
	if marker := os.Getenv("CRASH_ONCE_MARKER"); marker != "" {
		if _, err := os.Stat(marker); err != nil {
			os.WriteFile(marker, nil, 0o600)
			fmt.Fprintln(os.Stderr, "workload: simulated crash")
			os.Exit(3)
		}
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		file, err := os.ReadFile(filepath.Join(os.Getenv(SecretsDirEnv), "db-password"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "file=%s env=%s", file, os.Getenv("API_TOKEN"))
	})
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type mapSource map[string][]byte

func (m mapSource) Resource(_ context.Context, path string) ([]byte, error) {
	v, ok := m[path]
	if !ok {
		return nil, fmt.Errorf("resource %s not found", path)
	}
	return append([]byte(nil), v...), nil
}

func requireTmpfs(t *testing.T) {
	t.Helper()
	if err := requireMemoryFS("/dev/shm"); err != nil {
		t.Skipf("no tmpfs for secrets on this machine: %v", err)
	}
}

// clientVerifier trusts the emulator's development root and the emulated
// TEE, with optional extra appraisal rules.
func clientVerifier(t *testing.T, e *snp.Emulator, ao appraise.Options) *ratls.Verifier {
	t.Helper()
	anchors := &collateral.Set{}
	if n, reason := anchors.AddBytes("emulator root", e.Root().Raw); n != 1 {
		t.Fatalf("adding the emulator root: %s", reason)
	}
	ao.AllowEmulated = true
	return ratls.NewVerifier(ratls.VerifyOptions{Attest: attest.Options{TrustAnchors: anchors}, Appraise: ao})
}

func httpGet(t *testing.T, addr string, v *ratls.Verifier) (string, error) {
	t.Helper()
	return httpGetAs(t, addr, v, nil)
}

func httpGetAs(t *testing.T, addr string, v *ratls.Verifier, own *ratls.CertSource) (string, error) {
	t.Helper()
	cfg := ratls.ClientConfig(v, own, true, "http/1.1")
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialTLSContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			var attester attest.Attester
			if own != nil {
				attester = own.Attester()
			}
			return ratls.DialMutual(ctx, network, a, cfg, v, attester, true)
		},
	}}
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

type agentRun struct {
	listen    string
	secretDir string
	done      chan error
	cancel    context.CancelFunc
}

func startAgent(t *testing.T, e *snp.Emulator, extraEnv []string, policy RestartPolicy) *agentRun {
	t.Helper()
	source := mapSource{"default/db/password": []byte("s3cret"), "default/api/token": []byte("t0ken")}
	return startAgentWith(t, e, source, extraEnv, policy)
}

func startAgentWith(t *testing.T, e *snp.Emulator, source SecretSource, extraEnv []string, policy RestartPolicy) *agentRun {
	t.Helper()
	return startAgentConfig(t, e, source, extraEnv, policy, nil)
}

func startAgentConfig(t *testing.T, e *snp.Emulator, source SecretSource, extraEnv []string, policy RestartPolicy, clients *ratls.Verifier) *agentRun {
	t.Helper()
	requireTmpfs(t)
	upstream := freeLoopbackAddr(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	run := &agentRun{listen: ln.Addr().String(), done: make(chan error, 1), cancel: cancel}
	env := append(os.Environ(), workloadEnv+"="+upstream)
	env = append(env, extraEnv...)
	go func() {
		run.done <- Run(ctx, Config{
			Attester: e,
			Source:   source,
			Secrets: []Secret{
				{Path: "default/db/password", File: "db-password"},
				{Path: "default/api/token", Env: "API_TOKEN"},
			},
			Listener: ln, Upstream: upstream, Clients: clients,
			Workload: Supervisor{Command: []string{os.Args[0]}, Env: env, Policy: policy, MaxRestarts: 3, Backoff: 10 * time.Millisecond},
			Ready:    func(dir string) { ready <- dir },
		})
	}()
	select {
	case run.secretDir = <-ready:
	case err := <-run.done:
		t.Fatalf("agent stopped before it was ready: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-run.done
	})
	return run
}

// waitGet retries until the workload listens.
func waitGet(t *testing.T, addr string, v *ratls.Verifier) string {
	t.Helper()
	var lastErr error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		body, err := httpGet(t, addr, v)
		if err == nil && !strings.Contains(body, "connection refused") {
			return body
		}
		var rej *ratls.RejectionError
		if errors.As(err, &rej) {
			t.Fatalf("server rejected: %v", err)
		}
		lastErr = err
	}
	t.Fatalf("workload never responded: %v", lastErr)
	return ""
}

func TestAgentEndToEnd(t *testing.T) {
	e := mustEmulator(t)
	run := startAgent(t, e, nil, RestartNever)

	body := waitGet(t, run.listen, clientVerifier(t, e, appraise.Options{}))
	if body != "file=s3cret env=t0ken" {
		t.Errorf("workload responded %q, want both secrets", body)
	}
	info, err := os.Stat(run.secretDir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("secret directory mode %v, want 0700", info.Mode().Perm())
	}
	fi, err := os.Stat(filepath.Join(run.secretDir, "db-password"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", fi.Mode().Perm())
	}

	run.cancel()
	if err := <-run.done; err != nil {
		t.Errorf("agent returned %v after a clean stop", err)
	}
	run.done <- nil // for the cleanup
	if _, err := os.Stat(run.secretDir); !os.IsNotExist(err) {
		t.Errorf("secret directory %s still exists after the agent stopped (%v)", run.secretDir, err)
	}
}

func TestAgentClientRejections(t *testing.T) {
	debugTEE := namedEmulator(t, "debug", snp.EmulatorOptions{Debug: true})
	run := startAgent(t, debugTEE, nil, RestartNever)
	_, err := httpGet(t, run.listen, clientVerifier(t, debugTEE, appraise.Options{}))
	var rej *ratls.RejectionError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "debug") {
		t.Fatalf("error %v, want a rejection of the debug TEE", err)
	}
	if rej.Result.Claims == nil || len(rej.Result.Claims.Measurement) == 0 {
		t.Errorf("the rejection does not carry the verified claims")
	}

	good := mustEmulator(t)
	run = startAgent(t, good, nil, RestartNever)
	_, err = httpGet(t, run.listen, clientVerifier(t, good, appraise.Options{Measurement: make([]byte, 48)}))
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "measurement") {
		t.Fatalf("error %v, want a rejection naming the measurement", err)
	}

	// Another TEE's development root does not verify this one.
	other := namedEmulator(t, "other", snp.EmulatorOptions{})
	_, err = httpGet(t, run.listen, clientVerifier(t, other, appraise.Options{}))
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error %v, want an untrusted chain", err)
	}
}

func TestAgentRestartsCrashedWorkload(t *testing.T) {
	e := mustEmulator(t)
	marker := filepath.Join(t.TempDir(), "crashed")
	run := startAgent(t, e, []string{"CRASH_ONCE_MARKER=" + marker}, RestartOnFailure)
	body := waitGet(t, run.listen, clientVerifier(t, e, appraise.Options{}))
	if body != "file=s3cret env=t0ken" {
		t.Errorf("restarted workload responded %q", body)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the workload never crashed, so the restart was not tested: %v", err)
	}
}

func TestAgentWipesSecretsWhenWorkloadFails(t *testing.T) {
	requireTmpfs(t)
	var dir string
	err := Run(context.Background(), Config{
		Attester: mustEmulator(t),
		Source:   mapSource{"default/db/password": []byte("s3cret")},
		Secrets:  []Secret{{Path: "default/db/password", File: "db-password"}},
		Workload: Supervisor{Command: []string{"sh", "-c", "test -s \"$CLOISTER_SECRETS_DIR/db-password\" && exit 7"}, Policy: RestartNever},
		Ready:    func(d string) { dir = d },
	})
	if err == nil || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("error %v, want the workload's exit status 7 (it exits 7 only when it saw the secret)", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("secret directory %s survived the workload (%v)", dir, err)
	}
}

func TestAgentMissingSecret(t *testing.T) {
	requireTmpfs(t)
	err := Run(context.Background(), Config{
		Attester: mustEmulator(t),
		Source:   mapSource{},
		Secrets:  []Secret{{Path: "default/db/password", File: "db-password"}},
		Workload: Supervisor{Command: []string{"true"}},
	})
	if err == nil || !strings.Contains(err.Error(), "default/db/password") {
		t.Fatalf("error %v, want a failure naming the missing resource", err)
	}
}

// Emulators are shared by name across the tests, because each generates
// two RSA-4096 keys.
var (
	emulatorsMu sync.Mutex
	emulators   = map[string]*snp.Emulator{}
)

func namedEmulator(t *testing.T, name string, opts snp.EmulatorOptions) *snp.Emulator {
	t.Helper()
	emulatorsMu.Lock()
	defer emulatorsMu.Unlock()
	if e, ok := emulators[name]; ok {
		return e
	}
	e, err := snp.NewEmulator(opts)
	if err != nil {
		t.Fatal(err)
	}
	emulators[name] = e
	return e
}

func mustEmulator(t *testing.T) *snp.Emulator {
	return namedEmulator(t, "good", snp.EmulatorOptions{})
}

// In mutual mode the agent serves only clients that prove their own TEE.
func TestAgentMutual(t *testing.T) {
	server := mustEmulator(t)
	client := namedEmulator(t, "other", snp.EmulatorOptions{})
	run := startAgentConfig(t, server, mapSource{"default/db/password": []byte("s3cret"), "default/api/token": []byte("t0ken")},
		nil, RestartNever, clientVerifier(t, client, appraise.Options{}))
	own, err := ratls.NewCertSource(context.Background(), client, ratls.IssueOptions{Role: ratls.RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	v := clientVerifier(t, server, appraise.Options{})

	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if body, err = httpGetAs(t, run.listen, v, own); err == nil {
			break
		}
	}
	if err != nil || body != "file=s3cret env=t0ken" {
		t.Fatalf("attested client: body %q, error %v", body, err)
	}
	if _, err := httpGetAs(t, run.listen, v, nil); err == nil {
		t.Errorf("a client without an RA-TLS certificate was served in mutual mode")
	}
	// A server-role certificate from a TEE not trusted for clients is
	// rejected (the role check itself is tested in package ratls).
	serverCerts, err := ratls.NewCertSource(context.Background(), server, ratls.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := httpGetAs(t, run.listen, v, serverCerts); err == nil {
		t.Errorf("a certificate issued for the server role was accepted as a client's")
	}
}

// countingSource records how many resources were requested.
type countingSource struct {
	mapSource
	requests int
}

func (c *countingSource) Resource(ctx context.Context, path string) ([]byte, error) {
	c.requests++
	return c.mapSource.Resource(ctx, path)
}

// Secrets that cannot all reach the workload as given are rejected before
// any of them is fetched.
func TestAgentRejectsClashingSecrets(t *testing.T) {
	requireTmpfs(t)
	tests := []struct {
		name    string
		secrets []Secret
		want    string
	}{
		{"same variable twice", []Secret{{Path: "default/db/a", Env: "DB_PASSWORD"}, {Path: "default/db/b", Env: "DB_PASSWORD"}},
			"default/db/a and default/db/b both go into the environment variable DB_PASSWORD"},
		{"secret directory variable", []Secret{{Path: "default/db/a", Env: SecretsDirEnv}}, SecretsDirEnv + ", which names the secret directory"},
		{"reaper variable", []Secret{{Path: "default/db/a", Env: "CLOISTER_AGENT_REAPER_SECRET_DIR"}}, "reserves the variables"},
		{"same file twice", []Secret{{Path: "default/db/a", File: "pw"}, {Path: "default/db/b", File: "pw"}},
			"default/db/a and default/db/b both use the file name pw"},
		{"neither file nor variable", []Secret{{Path: "default/db/a"}}, "neither a file name nor an environment variable"},
		{"variable with equals sign", []Secret{{Path: "default/db/a", Env: "A=B"}}, `"A=B"`},
		{"file name with slash", []Secret{{Path: "default/db/a", File: "../pw"}}, `"../pw"`},
		{"resource path with query", []Secret{{Path: "default/db/a?x=1", File: "pw"}}, "invalid secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &countingSource{mapSource: mapSource{"default/db/a": []byte("a"), "default/db/b": []byte("b")}}
			started := false
			err := Run(context.Background(), Config{
				Attester: mustEmulator(t),
				Source:   src,
				Secrets:  tt.secrets,
				Workload: Supervisor{Command: []string{"true"}, Started: func(int) { started = true }},
			})
			if err == nil {
				t.Fatal("Run accepted the secrets")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if src.requests != 0 {
				t.Errorf("Run fetched %d secrets before rejecting them", src.requests)
			}
			if started {
				t.Error("Run started the workload")
			}
		})
	}
}
