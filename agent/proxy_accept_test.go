package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/ratls"
)

// exhaustedListener fails the first calls of Accept, as many as failures,
// with err, as the listener of a process out of file descriptors does, and
// then accepts.
type exhaustedListener struct {
	net.Listener
	err      error
	failures atomic.Int32
}

func (l *exhaustedListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: l.err}
	}
	return l.Listener.Accept()
}

// A proxy whose process runs out of file descriptors waits and keeps
// serving, so that clients cannot stop the workload by opening
// connections. Another accept error still stops it.
func TestProxyAcceptExhaustion(t *testing.T) {
	e := mustEmulator(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("served"))
	}))
	defer upstream.Close()
	certs, err := ratls.NewCertSource(context.Background(), e, ratls.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newProxy := func() *Proxy {
		return &Proxy{TLS: ratls.ServerConfig(certs, nil, "http/1.1"), Attester: e,
			Upstream: upstream.Listener.Addr().String(), Log: slog.New(slog.DiscardHandler)}
	}

	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE} {
		t.Run(errno.Error(), func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := &exhaustedListener{Listener: inner, err: os.NewSyscallError("accept4", errno)}
			ln.failures.Store(3)
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- newProxy().Serve(ctx, ln) }()

			body, err := httpGetAs(t, inner.Addr().String(), clientVerifier(t, e, appraise.Options{}), nil)
			if err != nil || body != "served" {
				t.Errorf("request after %v: body %q, error %v", errno, body, err)
			}
			cancel()
			if err := <-served; err != nil {
				t.Errorf("Serve returned %v after the context was cancelled, want nil", err)
			}
		})
	}

	t.Run("other error", func(t *testing.T) {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer inner.Close()
		ln := &exhaustedListener{Listener: inner, err: os.NewSyscallError("accept4", syscall.EINVAL)}
		ln.failures.Store(1)
		served := make(chan error, 1)
		go func() { served <- newProxy().Serve(context.Background(), ln) }()
		select {
		case err := <-served:
			if !errors.Is(err, syscall.EINVAL) {
				t.Errorf("Serve returned %v, want an error wrapping EINVAL", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve kept running after an accept error that is not resource exhaustion")
		}
	})
}
