package ratls

import (
	"context"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
	"github.com/cloister-dev/cloister/tee/snp"
)

// The benchmarks compare RA-TLS with plain TLS 1.3 using the same key type
// (ECDSA P-256) over TCP on loopback. The RA-TLS server is backed by the
// emulated SEV-SNP TEE; its certificate's evidence is verified once and
// then served from the Verifier's cache, as for any repeated peer.

var (
	benchEmulatorOnce sync.Once
	benchEmulator     *snp.Emulator
)

// emulatorForBench returns an emulated SEV-SNP TEE shared by the tests
// and benchmarks, because each emulator generates two RSA-4096 keys.
func emulatorForBench(tb testing.TB) *snp.Emulator {
	benchEmulatorOnce.Do(func() {
		e, err := snp.NewEmulator(snp.EmulatorOptions{})
		if err != nil {
			panic(fmt.Sprintf("creating the emulated SEV-SNP TEE: %v", err))
		}
		benchEmulator = e
	})
	return benchEmulator
}

func plainConfigs(b *testing.B) (server, client *tls.Config) {
	key := testcert.ECDSAKey(b, elliptic.P256())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "plain"},
		DNSNames: []string{"plain.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leaf := testcert.Issue(b, tmpl, nil, &key.PublicKey, key)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}}}
	client = &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "plain.test"}
	return server, client
}

func ratlsConfigs(b *testing.B, challenge bool) (server, client *tls.Config, v *Verifier, a attest.Attester) {
	e := emulatorForBench(b)
	certs, err := NewCertSource(context.Background(), e, IssueOptions{})
	if err != nil {
		b.Fatal(err)
	}
	anchors := &collateral.Set{}
	anchors.AddBytes("emulator root", e.Root().Raw)
	v = NewVerifier(VerifyOptions{Attest: attest.Options{TrustAnchors: anchors}, Appraise: appraise.Options{AllowEmulated: true}})
	return ServerConfig(certs, nil), ClientConfig(v, nil, challenge), v, e
}

// benchServer accepts connections, completes the handshake (and the
// challenge, when attester is set), then discards what it reads.
func benchServer(b *testing.B, cfg *tls.Config, attester attest.Attester) string {
	return acceptLoopback(b, func(raw net.Conn) {
		conn := tls.Server(raw, cfg)
		defer conn.Close()
		if conn.Handshake() != nil {
			return
		}
		if attester != nil && ServeChallenge(context.Background(), conn, attester) != nil {
			return
		}
		// Acknowledge every benchChunk bytes, so that a writer can
		// time whole transfers rather than socket buffering.
		// io.Discard reads through pooled buffers, so a
		// handshake-only connection allocates nothing large.
		for {
			if _, err := io.CopyN(io.Discard, conn, benchChunk); err != nil {
				return
			}
			if _, err := conn.Write([]byte{1}); err != nil {
				return
			}
		}
	})
}

func benchHandshakes(b *testing.B, addr string, dial func(string) (io.Closer, error)) {
	// Warm up: the first RA-TLS handshake verifies the evidence.
	c, err := dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := dial(addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

func BenchmarkHandshakePlainTLS13(b *testing.B) {
	server, client := plainConfigs(b)
	addr := benchServer(b, server, nil)
	benchHandshakes(b, addr, func(a string) (io.Closer, error) { return tls.Dial("tcp", a, client) })
}

func BenchmarkHandshakeRATLS(b *testing.B) {
	server, client, v, _ := ratlsConfigs(b, false)
	addr := benchServer(b, server, nil)
	benchHandshakes(b, addr, func(a string) (io.Closer, error) {
		return Dial(context.Background(), "tcp", a, client, v, false)
	})
}

// BenchmarkHandshakeRATLSChallenge adds the freshness challenge: one
// attestation on the server and one evidence verification on the client
// per connection.
func BenchmarkHandshakeRATLSChallenge(b *testing.B) {
	server, client, v, a := ratlsConfigs(b, true)
	addr := benchServer(b, server, a)
	benchHandshakes(b, addr, func(addr string) (io.Closer, error) {
		return Dial(context.Background(), "tcp", addr, client, v, true)
	})
}

const benchChunk = 1 << 20

// transfer sends benchChunk bytes and waits for the server's
// acknowledgement.
func transfer(b *testing.B, conn io.ReadWriter, buf []byte) {
	if _, err := conn.Write(buf); err != nil {
		b.Fatal(err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		b.Fatal(err)
	}
}

func benchThroughput(b *testing.B, conn io.ReadWriteCloser) {
	defer conn.Close()
	buf := make([]byte, benchChunk)
	b.SetBytes(benchChunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		transfer(b, conn, buf)
	}
}

func BenchmarkThroughputPlainTLS13(b *testing.B) {
	server, client := plainConfigs(b)
	addr := benchServer(b, server, nil)
	conn, err := tls.Dial("tcp", addr, client)
	if err != nil {
		b.Fatal(err)
	}
	benchThroughput(b, conn)
}

func BenchmarkThroughputRATLS(b *testing.B) {
	server, client, v, _ := ratlsConfigs(b, false)
	addr := benchServer(b, server, nil)
	conn, err := Dial(context.Background(), "tcp", addr, client, v, false)
	if err != nil {
		b.Fatal(err)
	}
	benchThroughput(b, conn)
}

// The paired benchmarks alternate plain TLS and RA-TLS in one loop and
// time each side separately, so that both run under the same machine load.
// They report each rate and the RA-TLS/plain ratio.

func BenchmarkHandshakePaired(b *testing.B) {
	plainServer, plainClient := plainConfigs(b)
	plainAddr := benchServer(b, plainServer, nil)
	server, client, v, _ := ratlsConfigs(b, false)
	addr := benchServer(b, server, nil)
	dialPlain := func() (io.Closer, error) { return tls.Dial("tcp", plainAddr, plainClient) }
	dialRATLS := func() (io.Closer, error) { return Dial(context.Background(), "tcp", addr, client, v, false) }

	timed := func(dial func() (io.Closer, error)) time.Duration {
		start := time.Now()
		c, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		return time.Since(start)
	}
	timed(dialPlain)
	timed(dialRATLS) // verifies the evidence once; later handshakes hit the cache
	var plain, ratls time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			plain += timed(dialPlain)
			ratls += timed(dialRATLS)
		} else {
			ratls += timed(dialRATLS)
			plain += timed(dialPlain)
		}
	}
	b.ReportMetric(float64(b.N)/plain.Seconds(), "plain-hs/s")
	b.ReportMetric(float64(b.N)/ratls.Seconds(), "ratls-hs/s")
	b.ReportMetric(plain.Seconds()/ratls.Seconds(), "ratio")
}

func BenchmarkThroughputPaired(b *testing.B) {
	plainServer, plainClient := plainConfigs(b)
	plainConn, err := tls.Dial("tcp", benchServer(b, plainServer, nil), plainClient)
	if err != nil {
		b.Fatal(err)
	}
	defer plainConn.Close()
	server, client, v, _ := ratlsConfigs(b, false)
	ratlsConn, err := Dial(context.Background(), "tcp", benchServer(b, server, nil), client, v, false)
	if err != nil {
		b.Fatal(err)
	}
	defer ratlsConn.Close()

	buf := make([]byte, benchChunk)
	timed := func(conn io.ReadWriter) time.Duration {
		start := time.Now()
		transfer(b, conn, buf)
		return time.Since(start)
	}
	var plain, ratls time.Duration
	b.SetBytes(2 * benchChunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			plain += timed(plainConn)
			ratls += timed(ratlsConn)
		} else {
			ratls += timed(ratlsConn)
			plain += timed(plainConn)
		}
	}
	mb := float64(b.N) * benchChunk / 1e6
	b.ReportMetric(mb/plain.Seconds(), "plain-MB/s")
	b.ReportMetric(mb/ratls.Seconds(), "ratls-MB/s")
	b.ReportMetric(plain.Seconds()/ratls.Seconds(), "ratio")
}
