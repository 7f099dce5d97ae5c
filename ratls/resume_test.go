package ratls

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// A resumed TLS 1.3 session runs VerifyConnection again, so evidence
// that has grown stale since the full handshake is rejected on
// resumption, at the client and, in mutual mode, at the server.
func TestResumptionVerifiesAgain(t *testing.T) {
	serverTEE, clientTEE := &fakeAttester{measurement: [32]byte{1}}, &fakeAttester{measurement: [32]byte{2}}
	serverCerts, err := NewCertSource(context.Background(), serverTEE, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clientCerts, err := NewCertSource(context.Background(), clientTEE, IssueOptions{Role: RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	var serverOffset, clientOffset time.Duration
	clientsOpts, serverOpts := acceptEmulated, acceptEmulated
	clientsOpts.Now = func() time.Time { return time.Now().Add(serverOffset) }
	serverOpts.Now = func() time.Time { return time.Now().Add(clientOffset) }
	clients, v := NewVerifier(clientsOpts), NewVerifier(serverOpts)
	addr := serve(t, ServerConfig(serverCerts, clients), serverTEE)

	cfg := ClientConfig(v, clientCerts, false)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	dial := func() (bool, error) {
		conn, err := Dial(context.Background(), "tcp", addr, cfg, v, false)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("hello\n")); err != nil {
			return false, err
		}
		// TLS 1.3 clients learn of a rejected client certificate on the
		// first read.
		if _, err := conn.Read(make([]byte, 1)); err != nil {
			return false, err
		}
		return conn.ConnectionState().DidResume, nil
	}

	if _, err := dial(); err != nil {
		t.Fatalf("full handshake: %v", err)
	}
	resumed, err := dial()
	if err != nil {
		t.Fatalf("resumption: %v", err)
	}
	if !resumed {
		t.Fatal("the second connection did not resume, so this test checks nothing")
	}

	clientOffset = 3 * time.Hour
	if _, err := dial(); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Errorf("client resuming with a stale server certificate: error %v, want a stale rejection", err)
	}
	clientOffset, serverOffset = 0, 3*time.Hour
	if _, err := dial(); !IsRemoteAlert(err, "bad certificate") {
		t.Errorf("server resuming with a stale client certificate: error %v, want a bad certificate alert", err)
	}
}

// The SEV-SNP certificate table travels in the endorsement extension as
// collateral only: the development root it chains to is not trusted
// unless the caller passes it as a trust anchor.
func TestEndorsementIsNotTrustAnchor(t *testing.T) {
	cert := issue(t, emulatorForBench(t), IssueOptions{})
	ce, err := ParseCertEvidence(cert.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	if len(ce.Aux) == 0 {
		t.Fatal("the emulated SEV-SNP certificate carries no endorsement extension, so this test checks nothing")
	}
	_, _, err = VerifyCertificate(context.Background(), cert.Leaf, attest.Options{})
	if err == nil || !strings.Contains(err.Error(), "no trusted root") {
		t.Errorf("error %v, want an untrusted chain", err)
	}
}
