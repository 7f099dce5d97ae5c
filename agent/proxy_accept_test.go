package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
	upstream, certs := startUpstreamAndCerts(t, e)
	newProxy := func() *Proxy {
		return &Proxy{TLS: ratls.ServerConfig(certs, nil, "http/1.1"), Attester: e,
			Upstream: upstream, Log: slog.New(slog.DiscardHandler)}
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

// fullBacklogListener returns the address of a loopback socket that
// listens with a backlog of zero and never accepts, after filling its
// accept queue, so that a further connection to it waits without a
// response. It skips the test when the kernel still accepts connections.
func fullBacklogListener(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	for range 8 {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { conn.Close() })
	}
	t.Skip("the kernel keeps accepting connections to a listener with a full accept queue")
	return ""
}

// A workload that does not take the connection makes the proxy close the
// client's connection after upstreamDialTimeout instead of holding it for
// the kernel's SYN retries.
func TestProxyUpstreamDialTimeout(t *testing.T) {
	saved := upstreamDialTimeout
	upstreamDialTimeout = 200 * time.Millisecond
	t.Cleanup(func() { upstreamDialTimeout = saved })

	e := mustEmulator(t)
	certs, err := ratls.NewCertSource(context.Background(), e, ratls.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{TLS: ratls.ServerConfig(certs, nil, "http/1.1"), Attester: e,
		Upstream: fullBacklogListener(t), Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Serve(ctx, ln)

	done := make(chan error, 1)
	go func() {
		_, err := httpGetAs(t, ln.Addr().String(), clientVerifier(t, e, appraise.Options{}), nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the request succeeded although the workload never took the connection")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the proxy still holds the connection while it waits for the workload")
	}
}
