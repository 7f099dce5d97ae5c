package custody

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// httpClient returns an HTTP client that reaches the workload at addr over
// RA-TLS as party, to send bodies that Client would not build.
func (d *deployment) httpClient(t *testing.T, addr, party string) *http.Client {
	t.Helper()
	expect := workloadtest.Expect(d.tee, d.digest, d.tee.Claims.Measurement)
	return workloadtest.NewClient(t, addr, expect, d.certs[party]).HTTPClient()
}

// postSign sends body as it is to the sign endpoint of the key name, and
// returns the status and the error message or the signature response.
func postSign(t *testing.T, hc *http.Client, name, body string) (int, string, *SignResponse) {
	t.Helper()
	resp, err := hc.Post("https://workload/v1/keys/"+name+"/sign", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("error response %q is not JSON: %v", raw, err)
		}
		return resp.StatusCode, e.Error, nil
	}
	var sr SignResponse
	if err := json.Unmarshal(raw, &sr); err != nil {
		t.Fatalf("sign response %q: %v", raw, err)
	}
	return resp.StatusCode, "", &sr
}

// A sign request body must contain exactly the message: a misspelled or
// missing member must not sign the empty message, and a second member or
// object must not pass unnoticed.
func TestSignRejectsInvalidBodies(t *testing.T) {
	d := newDeployment(t, nil)
	addr := d.serve(t)
	alice := d.httpClient(t, addr, "alice")
	msg := base64.StdEncoding.EncodeToString([]byte("GET /accounts"))

	cases := []struct {
		name, body, wantError string
	}{
		{"empty object", `{}`, `member "message" is missing`},
		{"misspelled member", `{"mesage":"` + msg + `"}`, `unknown member "mesage"`},
		{"extra member", `{"message":"` + msg + `","key":"btc-hot"}`, `unknown member "key"`},
		{"repeated member", `{"message":"` + msg + `","message":"eA=="}`, `member "message" appears twice`},
		{"null message", `{"message":null}`, `message: the value is null, not a base64 string`},
		{"number message", `{"message":12}`, `message: the value is a number, not a base64 string`},
		{"object message", `{"message":{}}`, `message: the value is "{", not a base64 string`},
		{"invalid base64", `{"message":"%%%"}`, `message: the value is not standard base64`},
		{"second object", `{"message":"` + msg + `"}{"message":"eA=="}`, `the body continues after the closing "}"`},
		{"trailing text", `{"message":"` + msg + `"} x`, `the body continues after the closing "}"`},
		{"array", `[]`, `found "[" where "{" is expected`},
		{"empty body", ``, `the body ends where "{" is expected`},
		{"cut off", `{"message":"` + msg, `unexpected EOF`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, message, _ := postSign(t, alice, "api-p256", c.body)
			if status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", status)
			}
			if !strings.Contains(message, c.wantError) {
				t.Errorf("error %q does not contain %q", message, c.wantError)
			}
			if !strings.Contains(message, `send {"message": base64}`) {
				t.Errorf("error %q does not name the fix", message)
			}
		})
	}

	// The explicit empty message is a request to sign zero bytes.
	status, message, resp := postSign(t, alice, "api-p256", `{"message":""}`)
	if status != http.StatusOK {
		t.Fatalf("signing the empty message: %d %s", status, message)
	}
	pub := d.publicKey(t, addr, "api-p256")
	if err := VerifySignature(ECDSAP256, pub, nil, resp.Signature); err != nil {
		t.Errorf("signature of the empty message: %v", err)
	}

	// Client.Sign sends a nil message as the empty message, not as null.
	signed, err := d.client(t, addr, "alice").Sign(t.Context(), "api-p256", nil)
	if err != nil {
		t.Fatalf("Client.Sign of a nil message: %v", err)
	}
	if err := VerifySignature(ECDSAP256, pub, nil, signed.Signature); err != nil {
		t.Errorf("signature of a nil message: %v", err)
	}
}

func FuzzDecodeSignRequest(f *testing.F) {
	f.Add([]byte(`{"message":"dHg6MDIwMDAwMDAwMQ=="}`))
	f.Add([]byte(`{"message":""}`))
	f.Add([]byte(`{"message":"eA==","message":"eA=="}`))
	f.Add([]byte(`{"message":"eA=="} {}`))
	f.Add([]byte(`{"message":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		message, err := decodeSignRequest(bytes.NewReader(body))
		if err != nil {
			return
		}
		// An accepted body is exactly one object with the message, so
		// encoding/json reads the same message from it.
		var req SignRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("accepted body %q is not valid JSON: %v", body, err)
		}
		if !bytes.Equal(req.Message, message) {
			t.Errorf("decoded %x, encoding/json decodes %x", message, req.Message)
		}
	})
}

// publicKey reads the public key of the key name from the workload.
func (d *deployment) publicKey(t *testing.T, addr, name string) []byte {
	t.Helper()
	pub, err := d.client(t, addr, "alice").PublicKey(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return pub.PublicKey
}

// Every message over MaxMessageSize gets 413 with the limit and the fix,
// also one whose body still fits the handler's body limit.
func TestSignRejectsLargeMessage(t *testing.T) {
	d := newDeployment(t, nil)
	addr := d.serve(t)
	alice := d.httpClient(t, addr, "alice")

	for _, size := range []int{MaxMessageSize + 1, MaxMessageSize + 512, 2 * MaxMessageSize} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			body := `{"message":"` + base64.StdEncoding.EncodeToString(make([]byte, size)) + `"}`
			status, message, _ := postSign(t, alice, "api-p256", body)
			if status != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413", status)
			}
			if !strings.Contains(message, fmt.Sprint(MaxMessageSize)) {
				t.Errorf("error %q does not name the limit %d", message, MaxMessageSize)
			}
			if !strings.Contains(message, "sign a digest of it instead") {
				t.Errorf("error %q does not name the fix", message)
			}
		})
	}

	// The excess may also follow the closing "}".
	status, message, _ := postSign(t, alice, "api-p256", `{"message":"eA=="}`+strings.Repeat(" ", 2*MaxMessageSize))
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body with white space past the limit after the object: status %d, want 413", status)
	}

	status, message, _ = postSign(t, alice, "api-p256", `{"message":"`+base64.StdEncoding.EncodeToString(make([]byte, MaxMessageSize))+`"}`)
	if status != http.StatusOK {
		t.Errorf("a message of MaxMessageSize bytes: %d %s, want 200", status, message)
	}
}
