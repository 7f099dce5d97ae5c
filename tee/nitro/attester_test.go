package nitro

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"

	"github.com/cloister-dev/cloister/internal/corpus"
)

// corpusDocument returns the first accepted attestation document of the
// evidence corpus that has user_data, and that user_data.
func corpusDocument(t *testing.T) (document, userData []byte) {
	t.Helper()
	for _, c := range corpus.AcceptedCases(t, "nitro") {
		data := c.EvidenceBytes(t)
		doc, err := ParseDocument(data)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if len(doc.UserData) > 0 {
			return data, doc.UserData
		}
	}
	t.Skip("the corpus has no accepted Nitro document with user_data")
	return nil, nil
}

// fakeNSM returns a send function that records the request and returns
// res and err.
func fakeNSM(res response.Response, err error, got *request.Request) func(request.Request) (response.Response, error) {
	return func(req request.Request) (response.Response, error) {
		*got = req
		return res, err
	}
}

func TestAttesterSendsUserData(t *testing.T) {
	document, userData := corpusDocument(t)
	var sent request.Request
	a := &Attester{send: fakeNSM(response.Response{Attestation: &response.Attestation{Document: document}}, nil, &sent)}
	ev, err := a.Attest(context.Background(), userData)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if !bytes.Equal(ev.Data, document) {
		t.Error("evidence is not the document that the NSM returned")
	}
	req, ok := sent.(*request.Attestation)
	if !ok {
		t.Fatalf("request %T, want *request.Attestation", sent)
	}
	if !bytes.Equal(req.UserData, userData) {
		t.Errorf("request user_data %x, want the report data %x", req.UserData, userData)
	}
	if req.Nonce != nil || req.PublicKey != nil {
		t.Errorf("request sets nonce %x or public_key %x, want neither", req.Nonce, req.PublicKey)
	}
}

func TestAttesterRejectsBadResponse(t *testing.T) {
	document, userData := corpusDocument(t)
	other := bytes.Clone(userData)
	other[0] ^= 1
	tests := []struct {
		name string
		res  response.Response
		err  error
		want string
	}{
		{"ioctl failure", response.Response{}, syscall.EIO, "/dev/nsm"},
		{"error response", response.Response{Error: response.ECInvalidArgument}, nil, "InvalidArgument"},
		{"no document", response.Response{}, nil, "no attestation document"},
		{"empty document", response.Response{Attestation: &response.Attestation{}}, nil, "no attestation document"},
		{"invalid document", response.Response{Attestation: &response.Attestation{Document: []byte{0xa0}}}, nil, "invalid attestation document"},
		{"document of another request", response.Response{Attestation: &response.Attestation{Document: document}}, nil, "user_data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sent request.Request
			a := &Attester{send: fakeNSM(tc.res, tc.err, &sent)}
			ev, err := a.Attest(context.Background(), other)
			if err == nil {
				t.Fatalf("Attest returned %d bytes of evidence, want an error", len(ev.Data))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("error %q does not wrap %v", err, tc.err)
			}
		})
	}
}

func TestAttesterRejectsLongUserData(t *testing.T) {
	called := false
	a := &Attester{send: func(request.Request) (response.Response, error) {
		called = true
		return response.Response{}, nil
	}}
	if _, err := a.Attest(context.Background(), make([]byte, maxUserDataSize+1)); err == nil {
		t.Errorf("Attest accepted %d bytes of report data", maxUserDataSize+1)
	}
	if called {
		t.Error("Attest sent a request with too long user_data to the NSM")
	}
}

func TestAttesterDeadline(t *testing.T) {
	block := make(chan struct{})
	release := time.AfterFunc(2*time.Second, func() { close(block) })
	// Release the request that Attest abandons when the test ends.
	t.Cleanup(func() {
		if release.Stop() {
			close(block)
		}
	})
	a := &Attester{send: func(request.Request) (response.Response, error) {
		<-block
		return response.Response{}, syscall.EIO
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Attest(ctx, []byte("nonce"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Attest returned after %v, want soon after the 50 ms deadline", elapsed)
	}
}
