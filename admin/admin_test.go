package admin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/internal/testcert"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/store/storetest"
)

const testKey = "test-admin-key-0123456789abcdef"

func newTestStore(t *testing.T) store.Store {
	t.Helper()
	return openTestStore(t, store.Config{DataDir: t.TempDir()})
}

func openTestStore(t *testing.T, cfg store.Config) store.Store {
	t.Helper()
	raw := make([]byte, store.MasterKeySize)
	rand.Read(raw)
	mk, err := store.NewMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MasterKey = mk
	cfg.Logger = quietLogger()
	s, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// forEachStore runs fn on a SQLite store and, when
// CLOISTER_TEST_POSTGRES_URL is set, on a PostgreSQL store in a fresh
// schema that is dropped afterwards.
func forEachStore(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newTestStore(t)) })
	if dbURL := storetest.PostgresURL(t, "cloister_admin_test"); dbURL != "" {
		t.Run("postgres", func(t *testing.T) { fn(t, openTestStore(t, store.Config{DatabaseURL: dbURL})) })
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestServer serves the admin API on a loopback port, mounted under
// PathPrefix like the service does.
func newTestServer(t *testing.T, cfg Config) (*httptest.Server, store.Store) {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = newTestStore(t)
	}
	cfg.Logger = quietLogger()
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(PathPrefix, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, cfg.Store
}

// newTestClient starts a handler on s with testKey and returns a client
// that authenticates with that key.
func newTestClient(t *testing.T, s store.Store) *Client {
	t.Helper()
	srv, _ := newTestServer(t, Config{APIKey: testKey, Store: s})
	return &Client{BaseURL: srv.URL, APIKey: testKey, HTTPClient: srv.Client()}
}

func TestUnauthenticatedRejected(t *testing.T) {
	srv, _ := newTestServer(t, Config{APIKey: testKey})
	tests := []struct {
		name   string
		method string
		path   string
		header string
	}{
		{name: "no header", method: http.MethodGet, path: "secrets"},
		{name: "wrong key", method: http.MethodGet, path: "secrets", header: "Bearer wrong-key-0123456789abcdef"},
		{name: "key prefix", method: http.MethodGet, path: "secrets", header: "Bearer " + testKey[:10]},
		{name: "basic scheme", method: http.MethodGet, path: "secrets", header: "Basic " + testKey},
		{name: "empty bearer", method: http.MethodGet, path: "audit", header: "Bearer "},
		{name: "change without key", method: http.MethodPut, path: "secrets/default/key/a"},
		{name: "unknown path", method: http.MethodGet, path: "no-such-endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+PathPrefix+tt.path, strings.NewReader("value"))
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()

			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
			var p Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("decode problem: %v", err)
			}
			if p.Status != http.StatusUnauthorized || p.Title == "" {
				t.Errorf("problem = %+v", p)
			}
		})
	}
}

func TestUnauthenticatedChangesNothing(t *testing.T) {
	srv, s := newTestServer(t, Config{APIKey: testKey})
	c := &Client{BaseURL: srv.URL, APIKey: "wrong-key-0123456789abcdef"}
	_, err := c.PutSecret(context.Background(), "default/key/a", []byte("v"))
	var p *Problem
	if !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		t.Fatalf("PutSecret with wrong key: err = %v, want a 401 problem", err)
	}
	if !strings.Contains(p.Detail, "admin.key") || !strings.Contains(p.Detail, KeyEnv) {
		t.Errorf("problem detail %q does not say where the service's admin key is", p.Detail)
	}
	if !strings.Contains(p.Detail, "Replicas that share a database") {
		t.Errorf("problem detail %q does not say that replicas need the same admin key", p.Detail)
	}
	list, err := s.ListSecrets(context.Background(), "")
	if err != nil || len(list) != 0 {
		t.Errorf("store has %d secrets after a rejected put (err %v), want 0", len(list), err)
	}
}

// A secret put on a service whose master key did not seal the stored
// secrets is rejected with 409, logged with its request ID, and the
// client's error carries that ID.
func TestPutSecretUnderOtherMasterKey(t *testing.T) {
	dir := t.TempDir()
	first := openTestStore(t, store.Config{DataDir: dir})
	if _, err := first.PutSecret(context.Background(), "default/key/a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h, err := NewHandler(Config{Store: openTestStore(t, store.Config{DataDir: dir}), APIKey: testKey,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("X-Request-Id", "req-409")
		w.Header().Set("X-Request-Id", "req-409")
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	_, err = (&Client{BaseURL: srv.URL, APIKey: testKey}).PutSecret(context.Background(), "default/key/b", []byte("b"))
	var p *Problem
	if !errors.As(err, &p) || p.Status != http.StatusConflict {
		t.Fatalf("PutSecret: err = %v, want a 409 problem", err)
	}
	if !strings.Contains(err.Error(), "(request ID req-409)") {
		t.Errorf("error %q does not carry the request ID", err)
	}
	if strings.Contains(p.Detail, "conflict: ") {
		t.Errorf("detail %q repeats the title", p.Detail)
	}
	for _, part := range []string{"admin request rejected", "req-409", "sealed under master key"} {
		if !strings.Contains(logs.String(), part) {
			t.Errorf("log does not contain %q:\n%s", part, logs.String())
		}
	}
}

// A client whose server URL has no listener gets an error that names the
// --server flag.
func TestClientNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	c := &Client{BaseURL: "http://" + addr, APIKey: testKey}
	_, err = c.ListSecrets(context.Background(), "")
	if err == nil {
		t.Fatal("ListSecrets succeeded without a server")
	}
	for _, part := range []string{addr, "--server", ServerEnv} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
}

func TestNoAuthenticationConfigured(t *testing.T) {
	if _, err := NewHandler(Config{Store: newTestStore(t)}); err == nil {
		t.Error("NewHandler without an API key or client CAs succeeded")
	}
}

func TestBodyLimitEnforced(t *testing.T) {
	srv, s := newTestServer(t, Config{APIKey: testKey, MaxBodyBytes: 1024})
	c := &Client{BaseURL: srv.URL, APIKey: testKey}
	ctx := context.Background()

	_, err := c.PutSecret(ctx, "default/key/big", bytes.Repeat([]byte("x"), 1025))
	var p *Problem
	if !errors.As(err, &p) || p.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("PutSecret of 1025 bytes with a 1024-byte limit: err = %v, want 413", err)
	}
	if _, err := s.GetSecret(ctx, "default/key/big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("oversized secret was stored: %v", err)
	}

	_, err = c.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: strings.Repeat("a", 2000)})
	if !errors.As(err, &p) || p.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("AddReferenceValue with an oversized body: err = %v, want 413", err)
	}

	if _, err := c.PutSecret(ctx, "default/key/small", bytes.Repeat([]byte("x"), 1024)); err != nil {
		t.Errorf("PutSecret at the limit: %v", err)
	}
}

func TestSecretsThroughClient(t *testing.T) {
	forEachStore(t, testSecretsThroughClient)
}

func testSecretsThroughClient(t *testing.T, s store.Store) {
	srv, _ := newTestServer(t, Config{APIKey: testKey, Store: s})
	c := &Client{BaseURL: srv.URL, APIKey: testKey, HTTPClient: srv.Client()}
	ctx := context.Background()

	info, err := c.PutSecret(ctx, "default/key/disk", []byte("disk key"))
	if err != nil {
		t.Fatalf("PutSecret: %v", err)
	}
	if info.Path != "default/key/disk" || info.Version != 1 || info.Size != len("disk key") {
		t.Errorf("PutSecret = %+v", info)
	}
	if info, err = c.PutSecret(ctx, "default/key/disk", []byte("disk key 2")); err != nil || info.Version != 2 {
		t.Errorf("second PutSecret = %+v, %v; want version 2", info, err)
	}
	if _, err := c.PutSecret(ctx, "other/cert/tls", []byte("cert")); err != nil {
		t.Fatalf("PutSecret: %v", err)
	}

	got, err := s.GetSecret(ctx, "default/key/disk")
	if err != nil || string(got.Value) != "disk key 2" {
		t.Errorf("store has %q, %v; want the second version", got.Value, err)
	}

	list, err := c.ListSecrets(ctx, "default/")
	if err != nil {
		t.Fatalf("ListSecrets: %v", err)
	}
	if len(list) != 1 || list[0].Path != "default/key/disk" {
		t.Errorf("ListSecrets(default/) = %+v", list)
	}

	// A secret's value is never served back.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+PathPrefix+"secrets/default/key/disk", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 400 || bytes.Contains(body, []byte("disk key")) {
		t.Errorf("GET of a secret returned %d %q, want an error without the value", resp.StatusCode, body)
	}

	if err := c.DeleteSecret(ctx, "default/key/disk"); err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	var p *Problem
	if err := c.DeleteSecret(ctx, "default/key/disk"); !errors.As(err, &p) || p.Status != http.StatusNotFound {
		t.Errorf("second DeleteSecret: err = %v, want 404", err)
	}
	if _, err := c.PutSecret(ctx, "not-a-resource-path", []byte("v")); !errors.As(err, &p) || p.Status != http.StatusBadRequest {
		t.Errorf("PutSecret with an invalid path: err = %v, want 400", err)
	}

	// Four changes succeeded and two were rejected. Each appended an
	// admin record.
	records, err := c.ListAudit(ctx, store.AuditQuery{Action: store.AuditAdmin})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	var verdicts []string
	for _, rec := range records {
		verdicts = append(verdicts, rec.Verdict)
	}
	want := []string{"applied", "applied", "applied", "applied", "rejected", "rejected"}
	if !slices.Equal(verdicts, want) {
		t.Fatalf("admin record verdicts = %v, want %v", verdicts, want)
	}
	if records[0].Resource != "default/key/disk" || records[0].Requester != "api-key" {
		t.Errorf("first audit record = %+v", records[0])
	}
	if got := records[4].Resource; got != "DELETE "+PathPrefix+"secrets/default/key/disk" {
		t.Errorf("rejected delete resource = %q", got)
	}
	if got := records[5].Reason; !strings.Contains(got, "not-a-resource-path") {
		t.Errorf("rejected put reason = %q, want it to name the path", got)
	}
	v, err := c.VerifyAudit(ctx)
	if err != nil || v.Broken != nil || v.Records != 6 {
		t.Errorf("VerifyAudit = %+v, %v; want 6 records, intact", v, err)
	}
}

func TestPutSecretEmptyValue(t *testing.T) {
	forEachStore(t, testPutSecretEmptyValue)
}

// An empty secret value is rejected with 400, and neither creates a
// secret nor replaces a stored one.
func testPutSecretEmptyValue(t *testing.T, s store.Store) {
	c := newTestClient(t, s)
	ctx := context.Background()

	if _, err := c.PutSecret(ctx, "default/key/disk", []byte("disk key")); err != nil {
		t.Fatalf("PutSecret: %v", err)
	}
	for _, path := range []string{"default/key/disk", "default/key/new"} {
		_, err := c.PutSecret(ctx, path, nil)
		var p *Problem
		if !errors.As(err, &p) {
			t.Fatalf("PutSecret(%s) of an empty value: err = %v, want a problem", path, err)
		}
		if p.Status != http.StatusBadRequest {
			t.Errorf("PutSecret(%s) of an empty value: status %d, want 400", path, p.Status)
		}
		if !strings.Contains(p.Detail, "secret "+path+":") {
			t.Errorf("problem detail %q does not name the path %s", p.Detail, path)
		}
		if !strings.Contains(p.Detail, "body is empty") {
			t.Errorf("problem detail %q does not say that the body is empty", p.Detail)
		}
		if !strings.Contains(p.Detail, "--file FILE") {
			t.Errorf("problem detail %q does not give the fix", p.Detail)
		}
	}

	got, err := s.GetSecret(ctx, "default/key/disk")
	if err != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	if string(got.Value) != "disk key" {
		t.Errorf("stored value %q, want the value before the empty put", got.Value)
	}
	if got.Version != 1 {
		t.Errorf("stored version %d, want 1", got.Version)
	}
	if _, err := s.GetSecret(ctx, "default/key/new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSecret of the path first put empty: err = %v, want ErrNotFound", err)
	}

	records, err := c.ListAudit(ctx, store.AuditQuery{Action: store.AuditAdmin})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	var verdicts []string
	for _, rec := range records {
		verdicts = append(verdicts, rec.Verdict)
	}
	if want := []string{"applied", "rejected", "rejected"}; !slices.Equal(verdicts, want) {
		t.Errorf("admin record verdicts = %v, want %v", verdicts, want)
	}
}

func TestPutPolicyWithoutValidator(t *testing.T) {
	forEachStore(t, testPutPolicyWithoutValidator)
}

// A handler without Config.ValidatePolicy stores no policy. It responds
// with 503 and an error stating that no validator is configured.
func testPutPolicyWithoutValidator(t *testing.T, s store.Store) {
	c := newTestClient(t, s)
	ctx := context.Background()

	_, err := c.SetPolicy(ctx, store.PolicyResource, "default", "package policy\n\nallow := true\n")
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("SetPolicy without a validator: err = %v, want a problem", err)
	}
	if p.Status != http.StatusServiceUnavailable {
		t.Errorf("SetPolicy without a validator: status %d, want 503", p.Status)
	}
	if !strings.Contains(p.Detail, "no policy validator configured") {
		t.Errorf("problem detail %q does not say that no validator is configured", p.Detail)
	}
	list, err := s.ListPolicies(ctx, "")
	if err != nil {
		t.Fatalf("ListPolicies: %v", err)
	}
	if len(list) != 0 {
		t.Errorf("store has %d policies after the rejected upload, want 0", len(list))
	}
}

func TestPoliciesAndReferenceValuesThroughClient(t *testing.T) {
	forEachStore(t, testPoliciesAndReferenceValuesThroughClient)
}

func testPoliciesAndReferenceValuesThroughClient(t *testing.T, s store.Store) {
	validated := 0
	srv, _ := newTestServer(t, Config{APIKey: testKey, Store: s, ValidatePolicy: func(kind store.PolicyKind, name, module string) error {
		validated++
		if !strings.HasPrefix(module, "package ") {
			return errors.New("module does not start with a package clause")
		}
		return nil
	}})
	c := &Client{BaseURL: srv.URL, APIKey: testKey}
	ctx := context.Background()

	module := "package cloister.resource\n\ndefault allow := false\n"
	p, err := c.SetPolicy(ctx, store.PolicyResource, "default", module)
	if err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	if p.Version != 1 || len(p.Digest) != 64 {
		t.Errorf("SetPolicy = %+v", p)
	}
	got, err := c.GetPolicy(ctx, store.PolicyResource, "default")
	if err != nil || got.Module != module || got.Digest != p.Digest {
		t.Errorf("GetPolicy = %+v, %v", got, err)
	}
	var prob *Problem
	if _, err := c.SetPolicy(ctx, store.PolicyResource, "bad", "not rego"); !errors.As(err, &prob) || prob.Status != http.StatusBadRequest {
		t.Errorf("SetPolicy of an invalid module: err = %v, want 400", err)
	}
	if validated != 2 {
		t.Errorf("ValidatePolicy ran %d times, want 2", validated)
	}
	list, err := c.ListPolicies(ctx, "")
	if err != nil || len(list) != 1 || list[0].Module != "" {
		t.Errorf("ListPolicies = %+v, %v; want one entry without module", list, err)
	}
	if err := c.DeletePolicy(ctx, store.PolicyResource, "default"); err != nil {
		t.Errorf("DeletePolicy: %v", err)
	}

	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if _, err := c.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: measurementA, Expires: expires}); err != nil {
		t.Fatalf("AddReferenceValue: %v", err)
	}
	if _, err := c.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: measurementB}); err != nil {
		t.Fatalf("AddReferenceValue: %v", err)
	}
	values, err := c.ListReferenceValues(ctx, "snp.measurement")
	if err != nil || len(values) != 2 {
		t.Fatalf("ListReferenceValues = %+v, %v; want 2", values, err)
	}
	if !values[0].Expires.Equal(expires) || !values[1].Expires.IsZero() {
		t.Errorf("expiries = %v, %v; want %v and none", values[0].Expires, values[1].Expires, expires)
	}
	if err := c.RemoveReferenceValue(ctx, "snp.measurement", measurementA); err != nil {
		t.Errorf("RemoveReferenceValue: %v", err)
	}
	if err := c.RemoveReferenceValue(ctx, "snp.measurement", measurementA); !errors.As(err, &prob) || prob.Status != http.StatusNotFound {
		t.Errorf("second RemoveReferenceValue: err = %v, want 404", err)
	}
}

func TestClientCertificateAuthentication(t *testing.T) {
	ca, caKey := newTestCA(t, "admin CA")
	otherCA, otherKey := newTestCA(t, "other CA")
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	h, err := NewHandler(Config{Store: newTestStore(t), ClientCAs: pool, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()

	tests := []struct {
		name string
		cert *tls.Certificate
		want int
	}{
		{name: "certificate from the CA", cert: newClientCert(t, ca, caKey), want: http.StatusOK},
		{name: "certificate from another CA", cert: newClientCert(t, otherCA, otherKey), want: http.StatusUnauthorized},
		{name: "no certificate", want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			transport := srv.Client().Transport.(*http.Transport).Clone()
			if tt.cert != nil {
				transport.TLSClientConfig.Certificates = []tls.Certificate{*tt.cert}
			}
			c := &Client{BaseURL: srv.URL, HTTPClient: &http.Client{Transport: transport}}
			_, err := c.ListSecrets(context.Background(), "")
			var p *Problem
			switch {
			case tt.want == http.StatusOK && err != nil:
				t.Errorf("ListSecrets: %v", err)
			case tt.want != http.StatusOK && (!errors.As(err, &p) || p.Status != tt.want):
				t.Errorf("ListSecrets: err = %v, want status %d", err, tt.want)
			}
		})
	}
}

func newTestCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	tmpl := testcert.Template(1, name, true, x509.KeyUsageCertSign)
	return testcert.Issue(t, tmpl, nil, &key.PublicKey, key), key
}

func newClientCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) *tls.Certificate {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "operator"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cert := testcert.Issue(t, tmpl, ca, &key.PublicKey, caKey)
	return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
}

// An invalid query parameter gets 400 with a detail that names the value
// and the allowed range, without a "bad request" prefix, because the
// problem's title already states that the request is invalid.
func TestInvalidQueryDetail(t *testing.T) {
	srv, _ := newTestServer(t, Config{APIKey: testKey})
	tests := []struct {
		query, want string
	}{
		{"after=x", `after="x" is not a sequence number`},
		{"limit=0", `limit="0" must be 1 to `},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, body := sendWithToken(t, srv, http.MethodGet, PathPrefix+"audit?"+tt.query, testKey, nil)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", status, body)
			}
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("decode problem %s: %v", body, err)
			}
			if !strings.HasPrefix(p.Detail, tt.want) {
				t.Errorf("detail = %q, want it to start with %q", p.Detail, tt.want)
			}
		})
	}
}

// A query parameter that an endpoint does not read, one given twice, or a
// filter value that matches nothing by construction gets 400 that names
// it, so that a listing never looks complete while it ignored a filter.
func TestQueryParametersChecked(t *testing.T) {
	srv, _ := newTestServer(t, Config{APIKey: testKey})
	tests := []struct {
		name, method, path, want string
	}{
		{"misspelt audit filter", http.MethodGet, "audit?actoin=deny", `unknown query parameter "actoin"`},
		{"unknown audit action", http.MethodGet, "audit?action=denied", `action="denied" is not an audit action`},
		{"repeated limit", http.MethodGet, "audit?limit=1&limit=1000", "query parameter limit is given 2 times"},
		{"unknown policy kind", http.MethodGet, "policies?kind=resources", `kind="resources" is not a policy kind`},
		{"parameter of another endpoint", http.MethodGet, "secrets?name=x", `unknown query parameter "name"`},
		{"parameter on a change", http.MethodDelete, "secrets/default/key/a?version=1", "reads no query parameters"},
		{"malformed query", http.MethodGet, "audit?after=%zz", "invalid query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := sendWithToken(t, srv, tt.method, PathPrefix+tt.path, testKey, nil)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", status, body)
			}
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("decode problem %s: %v", body, err)
			}
			if !strings.Contains(p.Detail, tt.want) {
				t.Errorf("detail = %q, want it to contain %q", p.Detail, tt.want)
			}
		})
	}

	for _, path := range []string{"audit?action=deny&token_id=x&after=0&limit=5", "policies?kind=resource", "policies?kind=", "secrets?prefix=default/", "refvalues?name=snp.measurement"} {
		if status, body := sendWithToken(t, srv, http.MethodGet, PathPrefix+path, testKey, nil); status != http.StatusOK {
			t.Errorf("GET %s: status = %d, want 200; body %s", path, status, body)
		}
	}
}
