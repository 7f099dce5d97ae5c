package server

import (
	"context"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/internal/testcert"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns their paths and a pool that trusts the certificate.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cloister test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	cert := testcert.Issue(t, tmpl, nil, &key.PublicKey, key)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// Serve runs TLS on a real listener on 127.0.0.1, releases a secret over
// it, and stops gracefully when its context ends.
func TestServeTLSAndShutdown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		certFile, keyFile, pool := writeTestCert(t, t.TempDir())
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ts.srv.Serve(ctx, ln, certFile, keyFile) }()

		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		c := &kbs.Client{URL: "https://" + ln.Addr().String(), HTTPClient: hc, Attester: testEmulators(t)["good"]}
		got, err := c.Resource(context.Background(), testSecretPath)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(testSecret) {
			t.Errorf("secret over TLS = %q", got)
		}

		// Plain HTTP to the TLS listener gets an error, not a response.
		plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := plain.Get("http://" + ln.Addr().String() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("plain HTTP to the TLS listener succeeded")
			}
		}
		hc.CloseIdleConnections()

		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve after shutdown: %v", err)
			}
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Fatal("Serve did not return after its context ended")
		}
		if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
			t.Error("listener still accepts connections after shutdown")
		}
	})
}

// Concurrent /attest requests of one session, with one body, issue one
// token: the nonce is consumed once, and later requests get the same token
// back or a rejection.
func TestConcurrentAttestOneToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		jar, _ := cookiejar.New(nil)
		body := attestBody(t, auth(t, ts, jar))

		const n = 6
		var wg sync.WaitGroup
		tokens := make([]string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hc := &http.Client{Transport: ts.Client().Transport, Jar: jar}
				resp, err := hc.Post(ts.URL+"/kbs/v0/attest", "application/json", stringsReader(body))
				if err != nil {
					return
				}
				defer resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					var tok kbs.AttestationToken
					json.NewDecoder(resp.Body).Decode(&tok)
					tokens[i] = tok.Token
				}
			}()
		}
		wg.Wait()

		issued := map[string]bool{}
		for _, tok := range tokens {
			if tok != "" {
				issued[tok] = true
			}
		}
		if len(issued) != 1 {
			t.Errorf("%d distinct tokens issued, want 1", len(issued))
		}
		recs, err := ts.store.ListAudit(context.Background(), store.AuditQuery{Action: store.AuditAttest})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 {
			t.Errorf("%d attest audit records, want 1", len(recs))
		}
	})
}
