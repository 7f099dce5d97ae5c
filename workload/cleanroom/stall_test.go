package cleanroom

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// An upload body that stops arriving fails after the stall timeout, while
// one that keeps arriving is read whole.
func TestStallLimitedReader(t *testing.T) {
	results := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := &stallLimitedReader{r: r.Body, rc: http.NewResponseController(w), stall: 200 * time.Millisecond}
		_, err := io.ReadAll(body)
		results <- err
	}))
	defer srv.Close()

	send := func(t *testing.T, finish bool) error {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
		if finish {
			time.Sleep(50 * time.Millisecond)
			fmt.Fprint(conn, "world")
		}
		select {
		case err := <-results:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("the handler did not return")
			return nil
		}
	}

	if err := send(t, true); err != nil {
		t.Errorf("steady body: %v", err)
	}
	err := send(t, false)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("stalled body: err = %v, want a timeout", err)
	}
}
