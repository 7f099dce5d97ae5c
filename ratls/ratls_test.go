package ratls

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

var acceptEmulated = VerifyOptions{Appraise: appraise.Options{AllowEmulated: true}}

func issue(t *testing.T, a attest.Attester, o IssueOptions) *tls.Certificate {
	t.Helper()
	cert, err := Issue(context.Background(), a, o)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return cert
}

func TestIssueAndVerifyCertificate(t *testing.T) {
	cert := issue(t, &fakeAttester{}, IssueOptions{})
	claims, ce, err := VerifyCertificate(context.Background(), cert.Leaf, attest.Options{})
	if err != nil {
		t.Fatalf("VerifyCertificate: %v", err)
	}
	if ce.Layout != LayoutTaggedEvidence || ce.Tag != TagSNPReport {
		t.Errorf("layout %s tag %#x, want %s %#x", ce.Layout, ce.Tag, LayoutTaggedEvidence, TagSNPReport)
	}
	if got := claims.Attributes[AttrBindingRule]; got != string(RuleCloisterV1) {
		t.Errorf("binding rule %v, want %s", got, RuleCloisterV1)
	}
	if got := claims.Attributes[AttrRole]; got != string(RoleServer) {
		t.Errorf("role %v, want server", got)
	}
	if !cert.Leaf.NotBefore.Equal(time.Unix(ce.Claims.IssuedAt, 0)) {
		t.Errorf("notBefore %s differs from iat %d", cert.Leaf.NotBefore, ce.Claims.IssuedAt)
	}
	if !strings.Contains(cert.Leaf.Subject.String(), "emulated") {
		t.Errorf("subject %q of an emulated certificate lacks the emulated label", cert.Leaf.Subject)
	}
}

// resign builds a certificate for a new key that carries the extensions
// (and so the evidence) and the validity of src.
func resign(t *testing.T, src *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return selfSignAt(t, key, src.Extensions, src.NotBefore, src.NotAfter)
}

func TestVerifyCertificateRejectsOtherKey(t *testing.T) {
	cert := issue(t, &fakeAttester{}, IssueOptions{})
	forged := resign(t, cert.Leaf)
	claims, _, err := VerifyCertificate(context.Background(), forged, attest.Options{})
	if !errors.Is(err, attest.ErrBinding) {
		t.Fatalf("error %v, want a binding error", err)
	}
	if !strings.Contains(err.Error(), "not the key bound in its evidence") {
		t.Errorf("error %q does not explain the key mismatch", err)
	}
	if claims == nil || claims.TEE != fakeTEE {
		t.Errorf("claims %+v: the verified evidence claims are missing from the rejection", claims)
	}
}

func TestVerifyCertificateRejectsForeignEvidence(t *testing.T) {
	// Evidence whose report data is not SHA-512 of the claims.
	a := &fakeAttester{override: make([]byte, 64)}
	cert := issue(t, a, IssueOptions{})
	_, _, err := VerifyCertificate(context.Background(), cert.Leaf, attest.Options{})
	if !errors.Is(err, attest.ErrBinding) || !strings.Contains(err.Error(), "SHA-512") {
		t.Fatalf("error %v, want a binding error naming SHA-512 of the claims", err)
	}
}

func TestVerifyPeerRejections(t *testing.T) {
	now := time.Now()
	measurement := [32]byte{1, 2, 3}
	tests := []struct {
		name     string
		attester *fakeAttester
		issued   time.Time
		lifetime time.Duration
		opts     VerifyOptions
		role     Role
		want     string
		kind     error
	}{
		{name: "stale evidence", attester: &fakeAttester{}, issued: now.Add(-3 * time.Hour), lifetime: 24 * time.Hour,
			opts: acceptEmulated, role: RoleServer, want: "stale", kind: attest.ErrBinding},
		{name: "future evidence", attester: &fakeAttester{}, issued: now.Add(time.Hour), lifetime: time.Hour,
			opts: acceptEmulated, role: RoleServer, want: "future", kind: attest.ErrBinding},
		{name: "debug TEE", attester: &fakeAttester{debug: true}, issued: now,
			opts: acceptEmulated, role: RoleServer, want: "debug mode", kind: attest.ErrAppraisal},
		{name: "emulated without opt-in", attester: &fakeAttester{}, issued: now,
			opts: VerifyOptions{}, role: RoleServer, want: "emulated TEE", kind: attest.ErrAppraisal},
		{name: "measurement outside policy", attester: &fakeAttester{measurement: measurement}, issued: now,
			opts: VerifyOptions{Appraise: appraise.Options{AllowEmulated: true, Measurement: make([]byte, 32)}},
			role: RoleServer, want: "measurement", kind: attest.ErrAppraisal},
		{name: "policy callback", attester: &fakeAttester{}, issued: now,
			opts: VerifyOptions{Appraise: appraise.Options{AllowEmulated: true}, Policy: func(context.Context, *attest.Claims) (*appraise.Decision, error) {
				return &appraise.Decision{Reasons: []appraise.Reason{{Rule: "allow-list", Claim: "measurement", Message: "workload not in the allow list"}}}, nil
			}}, role: RoleServer, want: "allow list", kind: attest.ErrAppraisal},
		{name: "policy rejection without reasons", attester: &fakeAttester{}, issued: now,
			opts: VerifyOptions{Appraise: appraise.Options{AllowEmulated: true}, Policy: func(context.Context, *attest.Claims) (*appraise.Decision, error) {
				return &appraise.Decision{}, nil
			}}, role: RoleServer, want: "gave no reason", kind: attest.ErrAppraisal},
		{name: "policy without decision", attester: &fakeAttester{}, issued: now,
			opts: VerifyOptions{Appraise: appraise.Options{AllowEmulated: true}, Policy: func(context.Context, *attest.Claims) (*appraise.Decision, error) {
				return nil, nil
			}}, role: RoleServer, want: "returned no decision", kind: attest.ErrAppraisal},
		{name: "policy error", attester: &fakeAttester{}, issued: now,
			opts: VerifyOptions{Appraise: appraise.Options{AllowEmulated: true}, Policy: func(context.Context, *attest.Claims) (*appraise.Decision, error) {
				return nil, errors.New("rego: undefined function")
			}}, role: RoleServer, want: "could not be evaluated", kind: attest.ErrAppraisal},
		{name: "client certificate as server", attester: &fakeAttester{}, issued: now,
			opts: acceptEmulated, role: RoleClient, want: "server role", kind: attest.ErrBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := issue(t, tt.attester, IssueOptions{Lifetime: tt.lifetime, Now: func() time.Time { return tt.issued }})
			v := NewVerifier(tt.opts)
			_, err := v.VerifyPeer(context.Background(), cert.Leaf, tt.role)
			var rej *RejectionError
			if !errors.As(err, &rej) {
				t.Fatalf("error %v, want a *RejectionError", err)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %v is not of kind %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if rej.Result.Claims == nil {
				t.Errorf("rejection carries no claims, so it cannot show what was verified")
			}
			if v.CacheLen() != 0 {
				t.Errorf("a rejected certificate was cached")
			}
		})
	}
}

func TestVerifyPeerCachesPerCertificate(t *testing.T) {
	cert := issue(t, &fakeAttester{}, IssueOptions{})
	v := NewVerifier(acceptEmulated)
	for i := 0; i < 3; i++ {
		if _, err := v.VerifyPeer(context.Background(), cert.Leaf, RoleServer); err != nil {
			t.Fatalf("VerifyPeer %d: %v", i, err)
		}
	}
	if got := v.CacheLen(); got != 1 {
		t.Errorf("cache holds %d entries, want 1", got)
	}
	// The cached result must still enforce the role.
	if _, err := v.VerifyPeer(context.Background(), cert.Leaf, RoleClient); err == nil {
		t.Errorf("cached server certificate accepted in the client role")
	}
}

func TestVerifyPeerCacheExpires(t *testing.T) {
	now := time.Now()
	clock := now
	cert := issue(t, &fakeAttester{}, IssueOptions{Now: func() time.Time { return now }, Lifetime: 10 * time.Hour})
	o := acceptEmulated
	o.MaxAge = time.Hour
	o.Now = func() time.Time { return clock }
	v := NewVerifier(o)
	if _, err := v.VerifyPeer(context.Background(), cert.Leaf, RoleServer); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(2 * time.Hour)
	if _, err := v.VerifyPeer(context.Background(), cert.Leaf, RoleServer); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Errorf("error %v, want stale evidence after the cache entry expired", err)
	}
}

// acceptLoopback listens on a loopback port until the test ends and runs
// handle in its own goroutine for each connection. It returns the
// listening address.
func acceptLoopback(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(raw)
		}
	}()
	return ln.Addr().String()
}

// serve runs an RA-TLS echo server on loopback. Each connection serves
// the challenge first, then echoes one line.
func serve(t *testing.T, cfg *tls.Config, attester attest.Attester) string {
	t.Helper()
	return acceptLoopback(t, func(raw net.Conn) {
		defer raw.Close()
		conn := tls.Server(raw, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := conn.HandshakeContext(ctx); err != nil {
			return
		}
		if err := ServeChallenge(ctx, conn, attester); err != nil {
			return
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return
		}
		io.WriteString(conn, "echo: "+line)
	})
}

func echo(t *testing.T, conn io.ReadWriter) string {
	t.Helper()
	if _, err := io.WriteString(conn, "hello\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func TestDialWithChallenge(t *testing.T) {
	server := &fakeAttester{measurement: [32]byte{9}}
	certs, err := NewCertSource(context.Background(), server, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, ServerConfig(certs, nil), server)
	v := NewVerifier(acceptEmulated)

	for i := 0; i < 2; i++ {
		conn, err := Dial(context.Background(), "tcp", addr, ClientConfig(v, nil, true), v, true)
		if err != nil {
			t.Fatalf("Dial %d: %v", i, err)
		}
		if conn.Fresh == nil {
			t.Fatalf("Dial %d: no fresh evidence from the challenge", i)
		}
		if got := echo(t, conn); got != "echo: hello\n" {
			t.Errorf("echo %q", got)
		}
		conn.Close()
	}
	if v.CacheLen() != 1 {
		t.Errorf("cache holds %d certificates, want 1", v.CacheLen())
	}
	// One attestation for the certificate, one per challenge.
	if server.calls != 3 {
		t.Errorf("attester called %d times, want 3", server.calls)
	}
}

func TestDialWithoutChallenge(t *testing.T) {
	server := &fakeAttester{}
	certs, err := NewCertSource(context.Background(), server, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, ServerConfig(certs, nil), server)
	v := NewVerifier(acceptEmulated)
	conn, err := Dial(context.Background(), "tcp", addr, ClientConfig(v, nil, false), v, false)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if conn.Fresh != nil {
		t.Errorf("challenge ran although the client did not offer it")
	}
	if got := echo(t, conn); got != "echo: hello\n" {
		t.Errorf("echo %q", got)
	}

	if _, err := Dial(context.Background(), "tcp", addr, ClientConfig(v, nil, false), v, true); !errors.Is(err, ErrNoChallenge) {
		t.Errorf("error %v, want ErrNoChallenge when the challenge is required but not offered", err)
	}
}

// A server whose challenge response binds other report data (for example
// evidence replayed from another session) is rejected.
func TestDialRejectsReplayedChallenge(t *testing.T) {
	server := &fakeAttester{}
	certs, err := NewCertSource(context.Background(), server, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replaying := &fakeAttester{override: make([]byte, 64)}
	addr := serve(t, ServerConfig(certs, nil), replaying)
	v := NewVerifier(acceptEmulated)
	_, err = Dial(context.Background(), "tcp", addr, ClientConfig(v, nil, true), v, true)
	if !errors.Is(err, attest.ErrBinding) || !strings.Contains(err.Error(), "another session") {
		t.Fatalf("error %v, want a challenge binding error", err)
	}
}

func TestDialRejectsChallengeFromOtherTEE(t *testing.T) {
	server := &fakeAttester{measurement: [32]byte{1}}
	certs, err := NewCertSource(context.Background(), server, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := &fakeAttester{measurement: [32]byte{2}}
	addr := serve(t, ServerConfig(certs, nil), other)
	v := NewVerifier(acceptEmulated)
	_, err = Dial(context.Background(), "tcp", addr, ClientConfig(v, nil, true), v, true)
	if err == nil || !strings.Contains(err.Error(), "measurement differs") {
		t.Fatalf("error %v, want a measurement mismatch", err)
	}
}

func TestDialRejectsBadServer(t *testing.T) {
	server := &fakeAttester{debug: true}
	certs, err := NewCertSource(context.Background(), server, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, ServerConfig(certs, nil), server)
	v := NewVerifier(acceptEmulated)
	_, err = Dial(context.Background(), "tcp", addr, ClientConfig(v, nil, true), v, true)
	var rej *RejectionError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "debug") {
		t.Fatalf("error %v, want a rejection naming debug", err)
	}
	if rej.Result.Claims == nil || !rej.Result.Claims.Debug {
		t.Errorf("rejection lacks the verified claims")
	}
}

func TestMutual(t *testing.T) {
	serverTEE := &fakeAttester{measurement: [32]byte{1}}
	clientTEE := &fakeAttester{measurement: [32]byte{2}}
	serverCerts, err := NewCertSource(context.Background(), serverTEE, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clientCerts, err := NewCertSource(context.Background(), clientTEE, IssueOptions{Role: RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	clientsV := NewVerifier(acceptEmulated)
	addr, _ := serveMutual(t, ServerConfig(serverCerts, clientsV), serverTEE, clientsV)

	v := NewVerifier(acceptEmulated)
	conn, err := DialMutual(context.Background(), "tcp", addr, ClientConfig(v, clientCerts, true), v, clientTEE, true)
	if err != nil {
		t.Fatalf("mutual Dial: %v", err)
	}
	if got := echo(t, conn); got != "echo: hello\n" {
		t.Errorf("echo %q", got)
	}
	conn.Close()
	if clientsV.CacheLen() != 1 {
		t.Errorf("server verified %d client certificates, want 1", clientsV.CacheLen())
	}
}

// The server's own certificate and key, presented back to it as a client
// certificate, is rejected: the evidence is the server's, not the peer's.
func TestMutualRejectsReflectedCertificate(t *testing.T) {
	serverTEE := &fakeAttester{}
	serverCerts, err := NewCertSource(context.Background(), serverTEE, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, ServerConfig(serverCerts, NewVerifier(acceptEmulated)), serverTEE)
	own, err := serverCerts.Certificate(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	v := NewVerifier(acceptEmulated)
	cfg := ClientConfig(v, nil, false)
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return own, nil }
	conn, err := Dial(context.Background(), "tcp", addr, cfg, v, false)
	if err == nil {
		// TLS 1.3 clients learn of a rejected client certificate on the
		// first read.
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("server accepted its own reflected certificate")
	}

	// The server's check names the reflection.
	reflectErr := verifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{own.Leaf}}, NewVerifier(acceptEmulated), serverCerts, RoleClient)
	if reflectErr == nil || !strings.Contains(reflectErr.Error(), "reflected") {
		t.Errorf("error %v, want a reflection error", reflectErr)
	}
	// Without the key check, the attested role still rejects it.
	roleErr := verifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{own.Leaf}}, NewVerifier(acceptEmulated), nil, RoleClient)
	if roleErr == nil || !strings.Contains(roleErr.Error(), "reflected from the other end") {
		t.Errorf("error %v, want a role error", roleErr)
	}
}

func TestCertSourceRenews(t *testing.T) {
	now := time.Now()
	clock := now
	a := &fakeAttester{}
	s, err := NewCertSource(context.Background(), a, IssueOptions{Lifetime: time.Hour, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.Certificate(context.Background())
	clock = now.Add(2 * time.Hour)
	second, err := s.Certificate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("an expired certificate was served instead of a renewed one")
	}
	if !second.Leaf.NotBefore.Equal(clock.Truncate(time.Second)) {
		t.Errorf("renewed certificate issued at %s, want %s", second.Leaf.NotBefore, clock)
	}
}

func TestCertSourceRenewsInBackground(t *testing.T) {
	now := time.Now()
	var clock = now
	a := &fakeAttester{}
	s, err := NewCertSource(context.Background(), a, IssueOptions{Lifetime: time.Hour, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.Certificate(context.Background())
	clock = now.Add(40 * time.Minute)
	served, _ := s.Certificate(context.Background())
	if served != first {
		t.Fatal("the current certificate was not served while renewing")
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, _ := s.Certificate(context.Background())
		if c != first {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no background renewal after half the lifetime")
}

func TestIssueRejectsUntaggedFormat(t *testing.T) {
	_, err := Issue(context.Background(), untaggedAttester{}, IssueOptions{})
	if !errors.Is(err, attest.ErrUnsupported) {
		t.Fatalf("error %v, want ErrUnsupported", err)
	}
}

type untaggedAttester struct{}

func (untaggedAttester) Name() string { return "nitro" }
func (untaggedAttester) Attest(context.Context, []byte) (*attest.Evidence, error) {
	return &attest.Evidence{Format: "nitro", Data: []byte{1}}, nil
}

func TestCertVerifierDetectAndVerify(t *testing.T) {
	cert := issue(t, &fakeAttester{}, IssueOptions{})
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Leaf.Raw})
	for name, data := range map[string][]byte{"PEM": pemCert, "DER": cert.Leaf.Raw} {
		v, err := attest.Detect(data)
		if err != nil || v.Name() != FormatName {
			t.Fatalf("%s: Detect = %v, %v; want %s", name, v, err, FormatName)
		}
		res := appraise.Evaluate(context.Background(), attest.Evidence{Data: data}, attest.Options{}, appraise.Options{AllowEmulated: true})
		if res.Verdict != appraise.Accept {
			t.Errorf("%s: verdict %s: %v", name, res.Verdict, res.Error)
		}
	}
	plain := resignWithout(t)
	if (certVerifier{}).Detect(plain) {
		t.Errorf("a certificate without evidence was detected as RA-TLS")
	}
}

func resignWithout(t *testing.T) []byte {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCertVerifierStaleAtTime(t *testing.T) {
	cert := issue(t, &fakeAttester{}, IssueOptions{})
	_, _, err := VerifyCertificate(context.Background(), cert.Leaf, attest.Options{At: time.Now().Add(3 * time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("error %v, want stale evidence", err)
	}
}

func TestVerifyCertificateMaxAge(t *testing.T) {
	issued := time.Now().Truncate(time.Second)
	cert := issue(t, &fakeAttester{}, IssueOptions{Lifetime: 24 * time.Hour, Now: func() time.Time { return issued }})
	tests := []struct {
		name   string
		at     time.Time
		maxAge time.Duration
		want   string // empty when accepted
	}{
		{name: "within default", at: issued.Add(time.Hour)},
		{name: "older than default", at: issued.Add(3 * time.Hour), want: "value 3h0m0s, expected at most " + DefaultMaxAge.String()},
		{name: "within raised maximum", at: issued.Add(3 * time.Hour), maxAge: 4 * time.Hour},
		{name: "older than lowered maximum", at: issued.Add(2 * time.Minute), maxAge: time.Minute, want: "value 2m0s, expected at most 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, _, err := VerifyCertificate(context.Background(), cert.Leaf, attest.Options{At: tt.at, MaxAge: tt.maxAge})
			if claims == nil {
				t.Fatalf("no claims: %v", err)
			}
			check, ok := claims.FindCheck("ratls-freshness")
			if !ok {
				t.Fatalf("no ratls-freshness check in %+v", claims.Checks)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("error %v, want acceptance", err)
				}
				if check.Result != attest.CheckPassed {
					t.Errorf("ratls-freshness is %s, want passed", check.Result)
				}
				return
			}
			if !errors.Is(err, attest.ErrBinding) {
				t.Fatalf("error %v, want ErrBinding", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "stale") {
				t.Errorf("error %q does not say stale", err)
			}
			if check.Result != attest.CheckFailed {
				t.Errorf("ratls-freshness is %s, want failed", check.Result)
			}
		})
	}
}

func TestCertVerifierAppliesDefaultMaxAge(t *testing.T) {
	issued := time.Now().Truncate(time.Second)
	cert := issue(t, &fakeAttester{}, IssueOptions{Lifetime: 24 * time.Hour, Now: func() time.Time { return issued }})
	ev := attest.Evidence{Data: cert.Leaf.Raw}
	res := appraise.Evaluate(context.Background(), ev, attest.Options{At: issued.Add(3 * time.Hour)}, appraise.Options{AllowEmulated: true})
	if res.Verdict == appraise.Accept {
		t.Fatalf("a certificate 3h old within its 24h lifetime was accepted with the default maximum age %s", DefaultMaxAge)
	}
	if !strings.Contains(errorString(res.Error), "stale") {
		t.Errorf("error %v, want stale evidence", res.Error)
	}
}

func TestVerifyPeerUsesItsMaxAge(t *testing.T) {
	now := time.Now()
	cert := issue(t, &fakeAttester{}, IssueOptions{Lifetime: 24 * time.Hour, Now: func() time.Time { return now.Add(-3 * time.Hour) }})
	o := acceptEmulated
	o.MaxAge = 4 * time.Hour
	if _, err := NewVerifier(o).VerifyPeer(context.Background(), cert.Leaf, RoleServer); err != nil {
		t.Errorf("evidence 3h old rejected with MaxAge 4h: %v", err)
	}
}

func errorString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Certificates in the layouts of other software.

func selfSign(t testing.TB, key *ecdsa.PrivateKey, exts []pkix.Extension) *x509.Certificate {
	t.Helper()
	return selfSignAt(t, key, exts, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

func selfSignAt(t testing.TB, key *ecdsa.PrivateKey, exts []pkix.Extension, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "RATLS"},
		NotBefore: notBefore, NotAfter: notAfter, ExtraExtensions: exts}
	return testcert.Issue(t, tmpl, nil, &key.PublicKey, key)
}

func spkiOf(t testing.TB, key *ecdsa.PrivateKey) []byte {
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return spki
}

func gramineDICECert(t *testing.T, tag uint64) *x509.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	spkiHash := sha256.Sum256(spkiOf(t, key))
	entry, _ := encMode.Marshal([]any{uint64(hashSHA256), spkiHash[:]})
	claims, _ := encMode.Marshal(map[string]any{claimPubkeyHash: entry})
	rd := sha256.Sum256(claims)
	quote := fakeReport(false, [32]byte{}, rd[:])
	value, _ := encMode.Marshal(cborTag(tag, []any{quote, claims}))
	return selfSign(t, key, []pkix.Extension{{Id: OIDTaggedEvidence, Value: value}})
}

func TestOtherLayouts(t *testing.T) {
	legacyKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	legacyRD := sha256.Sum256(spkiOf(t, legacyKey))
	legacy := selfSign(t, legacyKey, []pkix.Extension{{Id: OIDGramineLegacyQuote, Value: fakeReport(false, [32]byte{}, legacyRD[:])}})

	oeKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	oeClaims := append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spkiOf(t, oeKey)}), 0)
	oeRD := sha256.Sum256(oeClaims)
	oeData := append(fakeReport(false, [32]byte{}, oeRD[:]), oeClaims...)
	oe := selfSign(t, oeKey, []pkix.Extension{{Id: OIDOpenEnclaveEvidence, Value: oeHeader(oeData)}})

	tests := []struct {
		name   string
		cert   *x509.Certificate
		layout Layout
		rule   BindingRule
	}{
		{"gramine tagged evidence", gramineDICECert(t, TagIntelQuoteGramine), LayoutTaggedEvidence, RuleTaggedSHA256},
		{"rats-tls tagged evidence", gramineDICECert(t, TagIntelQuote), LayoutTaggedEvidence, RuleTaggedSHA256},
		{"gramine legacy quote", legacy, LayoutGramineLegacy, RuleLegacySPKI},
		{"open enclave", oe, LayoutOpenEnclave, RuleOpenEnclave},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, ce, err := VerifyCertificate(context.Background(), tt.cert, attest.Options{})
			if err != nil {
				t.Fatalf("VerifyCertificate: %v", err)
			}
			if ce.Layout != tt.layout {
				t.Errorf("layout %s, want %s", ce.Layout, tt.layout)
			}
			if got := claims.Attributes[AttrBindingRule]; got != string(tt.rule) {
				t.Errorf("rule %v, want %s", got, tt.rule)
			}
			if len(claims.Warnings) == 0 {
				t.Errorf("no warning about the unbound half of the report data")
			}
			// Undated evidence is refused by a peer verifier by default.
			v := NewVerifier(acceptEmulated)
			if _, err := v.VerifyPeer(context.Background(), tt.cert, RoleServer); err == nil || !strings.Contains(err.Error(), "issuance time") {
				t.Errorf("VerifyPeer error %v, want a freshness rejection", err)
			}
			o := acceptEmulated
			o.AllowUndated = true
			if _, err := NewVerifier(o).VerifyPeer(context.Background(), tt.cert, RoleServer); err != nil {
				t.Errorf("VerifyPeer with AllowUndated: %v", err)
			}
			// The same evidence under another key is refused.
			if _, _, err := VerifyCertificate(context.Background(), resign(t, tt.cert), attest.Options{}); !errors.Is(err, attest.ErrBinding) {
				t.Errorf("evidence under another key: error %v, want a binding error", err)
			}
		})
	}
}

func oeHeader(data []byte) []byte {
	h := binary.LittleEndian.AppendUint32(nil, oeHeaderVersion)
	h = append(h, OEFormatSGXECDSA[:]...)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(data)))
	return append(h, data...)
}

// oeCustomClaims serializes claims as oe_serialize_custom_claims does:
// version and count, then per claim the name and value sizes, the
// NUL-terminated name and the value, all little-endian.
func oeCustomClaims(claims map[string][]byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, 1)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(claims)))
	for name, value := range claims {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(name)+1))
		b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
		b = append(b, name...)
		b = append(b, 0)
		b = append(b, value...)
	}
	return b
}

func TestParseCertEvidenceRejectsTwoExtensions(t *testing.T) {
	cert := issue(t, &fakeAttester{}, IssueOptions{})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	exts := append(cert.Leaf.Extensions, pkix.Extension{Id: OIDGramineLegacyQuote, Value: fakeReport(false, [32]byte{}, nil)})
	double := selfSign(t, key, exts)
	if _, err := ParseCertEvidence(double); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("error %v, want ErrMalformed for two evidence extensions", err)
	}
}

func TestFormatMatchesTag(t *testing.T) {
	tests := []struct {
		format string
		tag    uint64
		want   bool
	}{
		{"snp", TagSNPReport, true},
		{"dcap", TagIntelQuoteGramine, true},
		{"tdx", TagIntelQuote, true},
		{"snp", TagIntelQuoteGramine, false},
		{"dcap", TagSNPReport, false},
		{"nitro", TagSNPReport, false},
	}
	for _, tt := range tests {
		if got := formatMatchesTag(tt.format, tt.tag); got != tt.want {
			t.Errorf("formatMatchesTag(%q, %#x) = %v, want %v", tt.format, tt.tag, got, tt.want)
		}
	}
}

// With the emulated SEV-SNP TEE: the certificate verifies against the
// development root, and the same SNP report relabelled with the Intel
// quote tag is rejected.
func TestEmulatedSNPCertificate(t *testing.T) {
	e := emulatorForBench(t)
	cert := issue(t, e, IssueOptions{})
	anchors := &collateral.Set{}
	anchors.AddBytes("emulator root", e.Root().Raw)
	opts := attest.Options{TrustAnchors: anchors}

	claims, _, err := VerifyCertificate(context.Background(), cert.Leaf, opts)
	if err != nil {
		t.Fatalf("VerifyCertificate: %v", err)
	}
	if claims.TEE != attest.TEESNP || !claims.Emulated {
		t.Errorf("claims TEE %s emulated %v, want emulated snp", claims.TEE, claims.Emulated)
	}
	if got := claims.Attributes[AttrFormat]; got != "snp" {
		t.Errorf("evidence format %v, want snp", got)
	}

	var exts []pkix.Extension
	for _, ext := range cert.Leaf.Extensions {
		if ext.Id.Equal(OIDTaggedEvidence) || ext.Id.Equal(OIDEndorsementManifest) {
			var tagged cbor.RawTag
			if err := decMode.Unmarshal(ext.Value, &tagged); err != nil {
				t.Fatal(err)
			}
			tagged.Number = TagIntelQuoteGramine
			value, err := tagged.MarshalCBOR()
			if err != nil {
				t.Fatal(err)
			}
			ext.Value = value
		}
		exts = append(exts, ext)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	relabelled := selfSign(t, key, exts)
	if _, _, err := VerifyCertificate(context.Background(), relabelled, opts); !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "does not name snp") {
		t.Errorf("error %v, want a tag mismatch", err)
	}
}

func TestCertSourceRenewsLongLifetimeEarly(t *testing.T) {
	now := time.Now()
	clock := now
	s, err := NewCertSource(context.Background(), &fakeAttester{}, IssueOptions{Lifetime: 24 * time.Hour, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.Certificate(context.Background())
	clock = now.Add(DefaultLifetime/2 + time.Minute)
	s.Certificate(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, _ := s.Certificate(context.Background()); c != first {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("a certificate with a 24h lifetime was not renewed after %s, so clients with the default maximum age would reject it", DefaultLifetime/2)
}

func TestCertSourceNeverServesOldEvidence(t *testing.T) {
	now := time.Now()
	clock := now
	s, err := NewCertSource(context.Background(), &fakeAttester{}, IssueOptions{Lifetime: 24 * time.Hour, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	// After a long idle period the first handshake gets a new certificate.
	clock = now.Add(3 * time.Hour)
	c, err := s.Certificate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if age := clock.Sub(c.Leaf.NotBefore); age > time.Minute {
		t.Errorf("served a certificate %s old after an idle period", age)
	}
}
