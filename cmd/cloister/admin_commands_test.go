package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/store"
)

// testService is a cloister serve that runs in the test process on a
// loopback port, with its state in a temporary data directory.
type testService struct {
	url     string
	dataDir string
	keyFile string
	// masterKey is the master key that the service reads from
	// CLOISTER_MASTER_KEY.
	masterKey testKey
}

// startService runs "cloister serve" until the test ends. It points
// XDG_CONFIG_HOME and XDG_DATA_HOME at temporary directories, so that
// neither the service nor the commands write to the user's home, and passes
// the master key in CLOISTER_MASTER_KEY. The service gets serveArgs after
// its --data-dir.
func startService(t *testing.T, serveArgs ...string) *testService {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("CLOISTER_DATABASE_URL", "")
	t.Setenv(admin.KeyEnv, "")
	masterKey := newTestKey(t)
	t.Setenv(store.MasterKeyEnv, masterKey.text)

	dataDir := t.TempDir()
	serve, url := startKeyBroker(t, append([]string{"--data-dir", dataDir}, serveArgs...)...)
	// Cleanups run last-registered first, so the service stops before its
	// data directory is removed.
	t.Cleanup(func() {
		if err := serve.stop(t); err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	return &testService{url: url, dataDir: dataDir, keyFile: filepath.Join(dataDir, admin.KeyFile), masterKey: masterKey}
}

// run runs the cloister command line args against s through the root
// command that main runs. Standard input is stdin, or empty when nil. It
// returns the standard output and error, followed by the error that main
// would print, and the exit code that main would use.
func (s *testService) run(t *testing.T, stdin io.Reader, args ...string) (string, int) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	root := newRootCmd()
	var out bytes.Buffer
	root.SetIn(stdin)
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--server", s.url, "--admin-key-file", s.keyFile))
	err := root.Execute()
	if err != nil {
		out.WriteString("cloister: " + err.Error() + "\n")
	}
	return out.String(), exitCode(t, err)
}

// adminStep is one command of a sequence that runs against one service.
type adminStep struct {
	name  string
	args  []string
	stdin io.Reader
	exit  int
	// want and notWant are parts that the output (standard output, standard
	// error and the error) must and must not contain.
	want    []string
	notWant []string
}

// runAdminSteps runs steps in order, each as a subtest, because later steps
// read what earlier ones stored.
func runAdminSteps(t *testing.T, s *testService, steps []adminStep) {
	t.Helper()
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			out, code := s.run(t, step.stdin, step.args...)
			if code != step.exit {
				t.Errorf("cloister %s: exit code %d, want %d; output:\n%s", strings.Join(step.args, " "), code, step.exit, out)
			}
			for _, w := range step.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not contain %q:\n%s", w, out)
				}
			}
			for _, w := range step.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output contains %q:\n%s", w, out)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSecretCommands(t *testing.T) {
	s := startService(t)
	dir := t.TempDir()
	const fileValue = "file-secret-value-0123"
	valueFile := writeFile(t, filepath.Join(dir, "value.txt"), fileValue)
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()

	runAdminSteps(t, s, []adminStep{
		{name: "put from file", args: []string{"secret", "put", "default/app/file", "--file", valueFile},
			want: []string{"stored default/app/file version 1 (22 bytes)"}, notWant: []string{fileValue}},
		{name: "put from stdin with --file -", args: []string{"secret", "put", "default/app/stdin", "--file", "-"}, stdin: strings.NewReader("first"),
			want: []string{"stored default/app/stdin version 1 (5 bytes)"}},
		{name: "put from piped stdin", args: []string{"secret", "put", "default/app/stdin"}, stdin: strings.NewReader("hi\n"),
			want: []string{"stored default/app/stdin version 2 (3 bytes)"}},
		{name: "put from empty stdin", args: []string{"secret", "put", "default/app/empty"}, exit: exitUsage,
			want: []string{"standard input is empty", "--file FILE"}},
		{name: "put from a device", args: []string{"secret", "put", "default/app/empty"}, stdin: devNull, exit: exitUsage,
			want: []string{"standard input is a terminal or a device", "--file FILE"}},
		{name: "put from a missing file", args: []string{"secret", "put", "default/app/missing", "--file", filepath.Join(dir, "missing")}, exit: exitUsage,
			want: []string{"read secret value", "missing"}},
		{name: "put without a path", args: []string{"secret", "put"}, exit: exitUsage, want: []string{"accepts 1 arg"}},
		{name: "ls", args: []string{"secret", "ls"},
			want:    []string{"PATH", "default/app/file", "default/app/stdin"},
			notWant: []string{fileValue, "first", "default/app/empty"}},
		{name: "ls with prefix", args: []string{"secret", "ls", "default/app/s"},
			want: []string{"default/app/stdin"}, notWant: []string{"default/app/file"}},
		{name: "rm", args: []string{"secret", "rm", "default/app/file"}, want: []string{"deleted default/app/file"}},
		{name: "ls after rm", args: []string{"secret", "ls"}, notWant: []string{"default/app/file"}},
		{name: "rm again", args: []string{"secret", "rm", "default/app/file"}, exit: exitUsage, want: []string{"404", "default/app/file"}},
	})

	out, code := s.run(t, nil, "secret", "ls", "-o", "json")
	if code != exitOK {
		t.Fatalf("secret ls -o json: exit code %d:\n%s", code, out)
	}
	var list []store.SecretInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("secret ls -o json output is not a JSON list: %v\n%s", err, out)
	}
	if len(list) != 1 || list[0].Path != "default/app/stdin" || list[0].Version != 2 {
		t.Errorf("secret ls -o json = %+v, want default/app/stdin version 2", list)
	}

	// The piped bytes are stored exactly, trailing newline included.
	checkStoredSecret(t, s, "default/app/stdin", "hi\n")
}

// checkStoredSecret opens the service's database with its master key and
// compares the latest value of the secret at path with want.
func checkStoredSecret(t *testing.T, s *testService, path, want string) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{DataDir: s.dataDir, MasterKey: s.masterKey.key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secret, err := st.GetSecret(context.Background(), path)
	if err != nil {
		t.Fatalf("read secret %s: %v", path, err)
	}
	if string(secret.Value) != want {
		t.Errorf("secret %s has %d bytes, want the %d bytes that were put", path, len(secret.Value), len(want))
	}
}

func TestReadMasterKeyFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.key")
	_, err := readMasterKeyFile(path)
	if code := exitCode(t, err); code != exitUsage {
		t.Fatalf("exit code %d (%v), want %d", code, err, exitUsage)
	}
	for _, part := range []string{path, "not found", "--old-master-key-file"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
}

func TestPolicyCommands(t *testing.T) {
	s := startService(t)
	dir := t.TempDir()
	snpModule, err := runCloister(t, "policy", "default", "snp")
	if err != nil {
		t.Fatal(err)
	}
	resourceModule, err := runCloister(t, "policy", "default", "--kind", "resource", "default")
	if err != nil {
		t.Fatal(err)
	}
	good := writeFile(t, filepath.Join(dir, "good.rego"), snpModule)
	resource := writeFile(t, filepath.Join(dir, "resource.rego"), resourceModule)
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o700); err != nil {
		t.Fatal(err)
	}
	bad := writeFile(t, filepath.Join(dir, "policies", "bad.rego"), "package p\n\ndeny contains x if {\n")

	runAdminSteps(t, s, []adminStep{
		{name: "set good", args: []string{"policy", "set", "snp", good},
			want: []string{"stored attestation policy snp version 1, sha256 "}},
		{name: "set bad", args: []string{"policy", "set", "snp", bad}, exit: exitUsage,
			want: []string{"400", bad + ":", "rego_parse_error"}, notWant: []string{"snp.rego"}},
		{name: "set missing file", args: []string{"policy", "set", "snp", filepath.Join(dir, "missing.rego")}, exit: exitUsage,
			want: []string{"read policy", "missing.rego"}},
		{name: "set resource", args: []string{"policy", "set", "default", resource, "--kind", "resource"},
			want: []string{"stored resource policy default version 1"}},
		{name: "set good again", args: []string{"policy", "set", "snp", good},
			want: []string{"stored attestation policy snp version 2"}},
		{name: "get", args: []string{"policy", "get", "snp"}, want: []string{snpModule}},
		{name: "ls", args: []string{"policy", "ls"},
			want: []string{"KIND", "attestation  snp      2", "resource     default  1"}},
		{name: "ls resource", args: []string{"policy", "ls", "--kind", "resource"},
			want: []string{"default"}, notWant: []string{"snp"}},
		{name: "rm", args: []string{"policy", "rm", "snp"}, want: []string{"deleted attestation policy snp"}},
		{name: "get after rm", args: []string{"policy", "get", "snp"}, exit: exitUsage, want: []string{"404"}},
		{name: "invalid kind", args: []string{"policy", "get", "snp", "--kind", "other"}, exit: exitUsage, want: []string{"other"}},
	})

	out, code := s.run(t, nil, "policy", "get", "default", "--kind", "resource", "-o", "json")
	if code != exitOK {
		t.Fatalf("policy get -o json: exit code %d:\n%s", code, out)
	}
	var p store.Policy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("policy get -o json output is not a JSON policy: %v\n%s", err, out)
	}
	if p.Module != resourceModule || len(p.Digest) != 64 {
		t.Errorf("policy get -o json = version %d, digest %q, module of %d bytes; want the stored module and its digest", p.Version, p.Digest, len(p.Module))
	}
}

func TestRefValueCommands(t *testing.T) {
	s := startService(t)
	measurement := strings.Repeat("5d", 48)
	upper := strings.ToUpper(measurement)

	runAdminSteps(t, s, []adminStep{
		{name: "add measurement in upper case", args: []string{"refvalue", "add", "snp.measurement", upper},
			want: []string{"added snp.measurement = " + measurement + " (expires -)"}, notWant: []string{"warning"}},
		{name: "add not hex", args: []string{"refvalue", "add", "snp.measurement", "nothex"}, exit: exitUsage,
			want: []string{"snp.measurement", `"nothex"`, "SEV-SNP MEASUREMENT as 96 hex digits"}, notWant: []string{"added"}},
		{name: "add wrong length", args: []string{"refvalue", "add", "tdx.rtmr0", strings.Repeat("ab", 32)}, exit: exitUsage,
			want: []string{"tdx.rtmr0", "64 hex digits", "TDX RTMR[0] as 96 hex digits"}},
		{name: "add unknown TEE", args: []string{"refvalue", "add", "nosuchtee.foo", "1"}, exit: exitUsage,
			want: []string{`"nosuchtee.foo"`, "not a known TEE", "snp, tdx, sgx"}},
		{name: "add name without TEE", args: []string{"refvalue", "add", "measurement", measurement}, exit: exitUsage,
			want: []string{`"measurement"`, "<tee>.<claim>"}},
		{name: "add claim the TEE lacks", args: []string{"refvalue", "add", "sgx.host_data", strings.Repeat("ab", 32)}, exit: exitUsage,
			want: []string{"sgx claims have no host_data", "sgx.mrsigner"}},
		{name: "add misspelt name", args: []string{"refvalue", "add", "snp.measurment", measurement},
			want: []string{"warning:", "does not read snp.measurment", "snp.measurement", "rejects all snp evidence while snp.measurment is registered", "cloister refvalue rm snp.measurment", "added snp.measurment"}},
		{name: "add custom name", args: []string{"refvalue", "add", "psa.sw_custom", "Any Text"},
			want: []string{"added psa.sw_custom = Any Text"}, notWant: []string{"warning"}},
		{name: "add with ttl", args: []string{"refvalue", "add", "snp.host_data", strings.Repeat("00", 32), "--ttl", "1h"},
			want: []string{"added snp.host_data = " + strings.Repeat("00", 32) + " (expires 20"}},
		{name: "add with negative ttl", args: []string{"refvalue", "add", "snp.host_data", strings.Repeat("00", 32), "--ttl", "-1h"}, exit: exitUsage,
			want: []string{"--ttl"}},
		{name: "add with invalid expiry", args: []string{"refvalue", "add", "snp.host_data", strings.Repeat("00", 32), "--expires", "tomorrow"}, exit: exitUsage,
			want: []string{`"tomorrow"`, "RFC 3339"}},
		{name: "ls", args: []string{"refvalue", "ls"},
			want: []string{"NAME", "snp.measurement  " + measurement, "snp.host_data", "psa.sw_custom", "active"}},
		{name: "ls one name", args: []string{"refvalue", "ls", "snp.measurement"},
			want: []string{measurement}, notWant: []string{"psa.sw_custom"}},
		{name: "rm value in upper case", args: []string{"refvalue", "rm", "snp.measurement", upper},
			want: []string{"removed snp.measurement = " + upper}},
		{name: "rm value again", args: []string{"refvalue", "rm", "snp.measurement", measurement}, exit: exitUsage,
			want: []string{"404"}},
		{name: "rm every value", args: []string{"refvalue", "rm", "snp.measurment"},
			want: []string{"removed every value of snp.measurment"}},
		{name: "ls after rm", args: []string{"refvalue", "ls"},
			notWant: []string{"snp.measurement", "snp.measurment"}},
	})

	// The service checks values itself, for clients other than this
	// command.
	c, err := admin.ClientOptions{Server: s.url, KeyFile: s.keyFile}.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AddReferenceValue(context.Background(), store.ReferenceValue{Name: "snp.measurement", Value: "nothex"})
	var p *admin.Problem
	if !errors.As(err, &p) || p.Status != http.StatusBadRequest || !strings.Contains(p.Detail, `"nothex"`) {
		t.Errorf("AddReferenceValue of snp.measurement = nothex: err = %v, want 400 naming the value", err)
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	s := startService(t)
	if out, code := s.run(t, strings.NewReader("value"), "secret", "put", "default/app/audited"); code != exitOK {
		t.Fatalf("secret put: exit code %d:\n%s", code, out)
	}
	if out, code := s.run(t, nil, "refvalue", "add", "snp.measurement", strings.Repeat("5d", 48)); code != exitOK {
		t.Fatalf("refvalue add: exit code %d:\n%s", code, out)
	}

	runAdminSteps(t, s, []adminStep{
		{name: "verify data directory", args: []string{"audit", "verify", "--data-dir", s.dataDir},
			want: []string{"audit chain intact: 2 records, head "}},
		{name: "verify through the service", args: []string{"audit", "verify"},
			want: []string{"audit chain intact: 2 records, head "}},
		{name: "verify both sources", args: []string{"audit", "verify", "--data-dir", s.dataDir, "--database-url", "postgres://127.0.0.1/none"}, exit: exitUsage,
			want: []string{"either --data-dir or --database-url"}},
		{name: "verify invalid output", args: []string{"audit", "verify", "--data-dir", s.dataDir, "-o", "yaml"}, exit: exitUsage,
			want: []string{`"yaml"`, "text or json"}},
		{name: "ls", args: []string{"audit", "ls"},
			want: []string{"SEQ", "admin", "api-key", "default/app/audited", "refvalue:snp.measurement"}},
	})

	out, code := s.run(t, nil, "audit", "verify", "--data-dir", s.dataDir, "-o", "json")
	if code != exitOK {
		t.Fatalf("audit verify -o json: exit code %d:\n%s", code, out)
	}
	var v store.AuditVerification
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("audit verify -o json output is not JSON: %v\n%s", err, out)
	}
	if v.Records != 2 || len(v.Head) == 0 || v.Broken != nil {
		t.Errorf("audit verify -o json = %+v, want 2 intact records with a head", v)
	}
}

// A broken chain is reported with the record, the reason and both hashes,
// and exits 1.
func TestAuditVerifyReportsBreak(t *testing.T) {
	v := store.AuditVerification{Records: 4, Broken: &store.AuditBreak{Seq: 5, Reason: "hash mismatch",
		Stored: []byte{0xaa}, Computed: []byte{0xbb}}}
	var out bytes.Buffer
	err := reportVerification(&out, "text", v)
	if code := exitCode(t, err); code != exitRejected {
		t.Errorf("exit code %d, want %d", code, exitRejected)
	}
	for _, want := range []string{"BROKEN at record 5 after 4 intact records", "hash mismatch", "stored:   aa", "computed: bb"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not contain %q:\n%s", want, out.String())
		}
	}
	if err == nil || !strings.Contains(err.Error(), "record 5") {
		t.Errorf("error %v does not name record 5", err)
	}
}

// Stored secrets older than the versions the audit log records are reported
// as a rollback of an intact chain, not as a broken chain, and exit 1.
func TestAuditVerifyReportsSecretRollback(t *testing.T) {
	v := store.AuditVerification{Records: 7, Broken: &store.AuditBreak{Seq: 6, SecretRollback: true,
		Reason: "record 6 stored secret default/key/1 version 3, but the newest stored version is 2"}}
	var out bytes.Buffer
	err := reportVerification(&out, "text", v)
	if code := exitCode(t, err); code != exitRejected {
		t.Errorf("exit code %d, want %d", code, exitRejected)
	}
	text := out.String()
	for _, want := range []string{"audit chain intact (7 records)", "ROLLED BACK against record 6", "newest stored version is 2"} {
		if !strings.Contains(text, want) {
			t.Errorf("output does not contain %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "BROKEN") {
		t.Errorf("output calls a secret rollback a broken chain:\n%s", text)
	}
	if err == nil || !strings.Contains(err.Error(), "rolled back against audit record 6") {
		t.Errorf("error %v does not name the rollback and record 6", err)
	}
}

// An empty value argument, such as an unset shell variable, is a usage
// error, not a request to remove every value of the name.
func TestRefValueRemoveEmptyValue(t *testing.T) {
	_, err := runCloister(t, "refvalue", "rm", "snp.measurement", "")
	if code := exitCode(t, err); code != exitUsage {
		t.Fatalf("exit code %d (%v), want %d", code, err, exitUsage)
	}
	if !strings.Contains(err.Error(), "leave it out to remove every value") {
		t.Errorf("error %q does not name the fix", err)
	}
}
