package kbs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cloister-dev/cloister/attest"
)

// maxResponseSize bounds a KBS response body the client reads.
const maxResponseSize = 16 << 20

// supportedHashes are the hash algorithms the client offers in its
// Request, in the guest's order.
var supportedHashes = []string{"sha256", "sha384", "sha512", "sm3"}

// Client runs the KBS exchange from inside a TEE: auth, attest with a fresh
// TEE key, and resource requests whose JWE it decrypts with that key. A
// Client is safe for concurrent use. It attests once and reuses the token
// until the server rejects it.
type Client struct {
	// URL is the KBS base URL, such as https://kbs.example:8080; requests
	// go to URL + "/kbs/v0/...".
	URL string
	// HTTPClient sends the requests; nil means a client with its own
	// cookie jar and no other settings. A caller-supplied client needs a
	// cookie jar unless Bearer is set.
	HTTPClient *http.Client
	// Attester produces the evidence that binds the runtime data.
	Attester attest.Attester
	// Devices produce the evidence of additional devices, such as an
	// nvgpu.Emulator for the GPUs, which the client sends in
	// additional_evidence under the KBS tee name of each (see DeviceTEE).
	// Each device's evidence binds the device runtime data, and the
	// primary evidence binds the additional_evidence string with the
	// runtime data. Two devices with one tee name are an error.
	Devices []attest.Attester
	// TEE is the KBS tee name sent in the Request (snp, tdx, ...). Empty
	// means the attester's name without an "emulated-" prefix.
	TEE string
	// KeyType is the TEE key type: "P-256" (the default), "P-521" or
	// "RSA" (2048 bits, RSA-OAEP-256).
	KeyType string
	// Bearer makes resource requests carry the token in an Authorization
	// header, as the confidential-data-hub does, instead of the session
	// cookie.
	Bearer bool
	// InitData, when set, is sent with the attestation. The server checks
	// its digest against the TEE's launch-time field (SEV-SNP HOST_DATA,
	// TDX MRCONFIGID), which the host set when it launched the TEE.
	InitData *InitData
	// Logger receives a warning when the attester is an
	// attest.EventLogger whose event log could not be read, such as a TDX
	// guest's CC event log in a process that is not root. The first such
	// failure of a Client is logged at Warn and later ones at Debug. Nil
	// means slog.Default().
	Logger *slog.Logger

	once sync.Once
	http *http.Client
	// eventLogWarned is set once a failure to read the event log has been
	// logged at Warn.
	eventLogWarned atomic.Bool

	mu    sync.Mutex
	key   crypto.PrivateKey
	token string
}

func (c *Client) client() *http.Client {
	c.once.Do(func() {
		c.http = c.HTTPClient
		if c.http == nil {
			jar, _ := cookiejar.New(nil)
			c.http = &http.Client{Jar: jar}
		}
	})
	return c.http
}

func (c *Client) teeName() string {
	if c.TEE != "" {
		return c.TEE
	}
	return strings.TrimPrefix(c.Attester.Name(), "emulated-")
}

// GenerateKey returns a new TEE private key of the named type: "P-256",
// "P-521" (*ecdsa.PrivateKey) or "RSA" (2048-bit *rsa.PrivateKey).
func GenerateKey(keyType string) (crypto.PrivateKey, error) {
	switch keyType {
	case "", "P-256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-521":
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "RSA":
		return rsa.GenerateKey(rand.Reader, minRSABits)
	}
	return nil, fmt.Errorf("unsupported TEE key type %q: use P-256, P-521 or RSA", keyType)
}

func newRequest(tee string) authRequest {
	return authRequest{Version: ProtocolVersion, TEE: tee, ExtraParams: authExtraParams{SupportedHashAlgorithms: supportedHashes}}
}

// Attest runs auth and attest with a new TEE key and returns the token.
// The token and the key replace any earlier ones.
func (c *Client) Attest(ctx context.Context) (string, error) {
	if c.Attester == nil {
		return "", errors.New("kbs client: no attester configured")
	}
	key, err := GenerateKey(c.KeyType)
	if err != nil {
		return "", err
	}
	pub, err := PublicKeyJWK(key)
	if err != nil {
		return "", err
	}

	var ch Challenge
	if err := c.postJSON(ctx, "auth", newRequest(c.teeName()), &ch); err != nil {
		return "", fmt.Errorf("kbs auth: %w", err)
	}
	if err := ch.check(); err != nil {
		return "", fmt.Errorf("kbs auth: %w", err)
	}
	h, err := SelectedHash(ch.ExtraParams)
	if err != nil {
		return "", fmt.Errorf("kbs auth: %w", err)
	}

	additional, err := c.additionalEvidence(ctx, h, ch.Nonce, pub)
	if err != nil {
		return "", fmt.Errorf("kbs attest: %w", err)
	}
	digest, err := PrimaryDigest(h, ch.Nonce, pub, additional)
	if err != nil {
		return "", err
	}
	ev, err := c.Attester.Attest(ctx, digest)
	if err != nil {
		return "", fmt.Errorf("kbs attest: evidence from %s: %w", c.Attester.Name(), err)
	}
	if err := c.addEventLog(ctx, ev); err != nil {
		return "", fmt.Errorf("kbs attest: %w", err)
	}
	primary, err := json.Marshal(ev)
	if err != nil {
		return "", err
	}
	att := Attestation{
		InitData:    c.InitData,
		RuntimeData: RuntimeData{Nonce: ch.Nonce, TEEPubKey: pub},
		TEEEvidence: TEEEvidence{PrimaryEvidence: primary, AdditionalEvidence: additional},
	}
	var tok AttestationToken
	if err := c.postJSON(ctx, "attest", att, &tok); err != nil {
		return "", fmt.Errorf("kbs attest: %w", err)
	}
	if tok.Token == "" {
		return "", errors.New("kbs attest: response has no token")
	}

	c.mu.Lock()
	c.key, c.token = key, tok.Token
	c.mu.Unlock()
	return tok.Token, nil
}

// addEventLog puts the event log of an attest.EventLogger into ev.Aux,
// which the evidence envelope carries to the server's verifier, unless ev
// already has Aux. A log that cannot be read is logged and left out, so
// the attestation goes on without it. Only the cancellation of ctx is
// returned.
func (c *Client) addEventLog(ctx context.Context, ev *attest.Evidence) error {
	logger, ok := c.Attester.(attest.EventLogger)
	if !ok || len(ev.Aux) > 0 {
		return nil
	}
	eventLog, err := logger.EventLog(ctx)
	if err == nil {
		ev.Aux = eventLog
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}

	level := slog.LevelDebug
	if c.eventLogWarned.CompareAndSwap(false, true) {
		level = slog.LevelWarn
	}
	c.logger().Log(ctx, level, "kbs client: reading the event log failed, so attesting without it, which leaves the event-log check not-checked and fails a policy that requires the log",
		"attester", c.Attester.Name(), "err", err)
	return nil
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// authRequest is the /auth body with the guest's member order.
type authRequest struct {
	Version     string          `json:"version"`
	TEE         string          `json:"tee"`
	ExtraParams authExtraParams `json:"extra-params"`
}

type authExtraParams struct {
	SupportedHashAlgorithms []string `json:"supported-hash-algorithms"`
}

// Resource returns the secret at path ("repository/type/tag"), decrypted
// with the TEE key. It attests first when it holds no token. When it used a
// token from an earlier call and the server responds that the token is
// missing, invalid or expired, or that the policy denies it, it attests
// again once, because a fresh result may be accepted. A token it has just
// obtained is not retried: a second attestation would be appraised the same.
func (c *Client) Resource(ctx context.Context, path string) ([]byte, error) {
	c.mu.Lock()
	haveToken := c.token != ""
	c.mu.Unlock()
	if !haveToken {
		if _, err := c.Attest(ctx); err != nil {
			return nil, err
		}
	}
	secret, err := c.fetch(ctx, path)
	var p *Problem
	if haveToken && errors.As(err, &p) && retryable(p) {
		if _, err := c.Attest(ctx); err != nil {
			return nil, err
		}
		secret, err = c.fetch(ctx, path)
	}
	if err != nil {
		c.mu.Lock()
		token := c.token
		c.mu.Unlock()
		return nil, explainProblem(err, token)
	}
	return secret, nil
}

func retryable(p *Problem) bool {
	switch p.Variant() {
	case ProblemTokenNotFound, ProblemTokenVerifierError, ProblemPolicyDeny:
		return true
	}
	return false
}

func (c *Client) fetch(ctx context.Context, path string) ([]byte, error) {
	c.mu.Lock()
	key, token := c.key, c.token
	c.mu.Unlock()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("resource/"+strings.TrimPrefix(path, "/")), nil)
	if err != nil {
		return nil, err
	}
	if c.Bearer {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	body, err := c.do(req)
	if err != nil {
		return nil, fmt.Errorf("kbs resource %s: %w", path, err)
	}
	r, err := ParseResponse(body)
	if err != nil {
		return nil, fmt.Errorf("kbs resource %s: %w", path, err)
	}
	secret, err := Decrypt(key, r)
	if err != nil {
		return nil, fmt.Errorf("kbs resource %s: %w", path, err)
	}
	return secret, nil
}

func (c *Client) endpoint(name string) string {
	return strings.TrimSuffix(c.URL, "/") + "/kbs/v0/" + name
}

func (c *Client) postJSON(ctx context.Context, name string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(name), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(resp, out); err != nil {
		return fmt.Errorf("invalid response JSON: %w", err)
	}
	return nil
}

// do sends req and returns the body of a 200 response. A 401 or 404 with a
// KBS error body becomes a *Problem. When the response has an X-Request-Id
// header, a *RequestIDError wraps the *Problem or the status error. A KBS
// problem carries no cause (Trustee sends one /attest detail for every
// failure), so the ID is how a reader finds the cause in the service log.
func (c *Client) do(req *http.Request) ([]byte, error) {
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize))
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusUnauthorized, http.StatusNotFound:
		p, err := ParseProblem(resp.StatusCode, body)
		if err != nil {
			return nil, withRequestID(err, resp.Header)
		}
		return nil, withRequestID(p, resp.Header)
	}
	return nil, withRequestID(&StatusError{StatusCode: resp.StatusCode, Status: resp.Status, Body: body[:min(len(body), 512)]}, resp.Header)
}

// requestIDHeader is the response header in which the service returns the
// ID that its log lines for the request carry.
const requestIDHeader = "X-Request-Id"

// MaxRequestIDLength is the longest X-Request-Id that the service logs or
// takes from a caller.
const MaxRequestIDLength = 64

// IsRequestID reports whether id is an X-Request-Id that the service logs
// or, when configured to trust it, takes as the request ID. Such an ID has
// 1 to MaxRequestIDLength letters, digits, '.', '_' or '-', which are safe
// to log and to repeat in an error.
func IsRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// RequestIDError is the error of a failed KBS response that carried a
// request ID. Err is the *Problem or the status error, so errors.As still
// finds a *Problem through it.
type RequestIDError struct {
	Err       error
	RequestID string
}

// Error returns Err's text followed by the request ID and where to look
// it up.
func (e *RequestIDError) Error() string {
	return fmt.Sprintf("%v (request ID %s; the service log gives the cause under this ID)", e.Err, e.quotedID())
}

// Unwrap returns Err.
func (e *RequestIDError) Unwrap() error { return e.Err }

// quotedID returns the request ID quoted unless it contains only the
// characters that the service uses, because the header comes from the
// network.
func (e *RequestIDError) quotedID() string {
	if IsRequestID(e.RequestID) {
		return e.RequestID
	}
	return strconv.Quote(e.RequestID)
}

// withRequestID wraps err in a *RequestIDError when header has a request
// ID, cut to MaxRequestIDLength bytes, and returns err unchanged otherwise.
func withRequestID(err error, header http.Header) error {
	id := header.Get(requestIDHeader)
	if id == "" {
		return err
	}
	if len(id) > MaxRequestIDLength {
		id = id[:MaxRequestIDLength]
	}
	return &RequestIDError{Err: err, RequestID: id}
}
