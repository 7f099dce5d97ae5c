package workload

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ratls"
)

// Expect is the set of requirements that a party checks on a workload
// before it sends anything.
type Expect struct {
	// Manifest is the digest of the manifest the party agreed to.
	Manifest Digest
	// Measurement is the launch measurement of the workload the party
	// agreed to run. It is required.
	Measurement attest.Hex
	// Attest holds the trust anchors and collateral for the evidence.
	Attest attest.Options
	// Appraise holds the appraisal rules. The zero value is the strict
	// default, which rejects emulated TEEs. Its Measurement is replaced
	// by Expect.Measurement.
	Appraise appraise.Options
}

// check rejects an Expect that would accept any workload.
func (e Expect) check() error {
	if e.Manifest.IsZero() {
		return errors.New("workload: no manifest digest to expect; hash the agreed manifest with HashManifest")
	}
	if len(e.Measurement) == 0 {
		return errors.New("workload: no launch measurement to expect; pass the measurement of the workload build you agreed to")
	}
	return nil
}

// Client connects a party to one workload: it verifies the workload's
// evidence, measurement and manifest digest on every connection and
// presents the party's key.
type Client struct {
	addr     string
	expect   Expect
	identity tls.Certificate
	verifier *ratls.Verifier
}

// NewClient returns a Client for the workload at addr (host:port) that
// presents identity (see ClientCertificate).
func NewClient(addr string, expect Expect, identity tls.Certificate) (*Client, error) {
	if err := expect.check(); err != nil {
		return nil, err
	}
	ap := expect.Appraise
	ap.Measurement = expect.Measurement
	v := ratls.NewVerifier(ratls.VerifyOptions{
		Attest:   expect.Attest,
		Appraise: ap,
		Policy: func(_ context.Context, c *attest.Claims) (*appraise.Decision, error) {
			return manifestDecision(c, expect.Manifest), nil
		},
	})
	return &Client{addr: addr, expect: expect, identity: identity, verifier: v}, nil
}

// Dial opens a verified connection: the TLS handshake verifies the
// certificate's evidence, and the freshness challenge, which the client
// requires, proves that the same TEE holds the connection now.
func (c *Client) Dial(ctx context.Context) (*ratls.Conn, error) {
	cfg := ratls.ClientConfig(c.verifier, nil, true)
	identity := c.identity
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &identity, nil
	}
	conn, err := ratls.Dial(ctx, "tcp", c.addr, cfg, c.verifier, true)
	if err != nil {
		return nil, fmt.Errorf("connecting to the workload at %s: %w", c.addr, c.explainAlert(err))
	}
	if err := CheckManifest(conn.Fresh, c.expect.Manifest); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// explainAlert adds the party's key digest to a bad_certificate alert,
// because TLS carries no reason and the key is the likely cause.
func (c *Client) explainAlert(err error) error {
	// The workload sends the bad_certificate alert for an unknown key.
	if !ratls.IsRemoteAlert(err, "bad certificate") || c.identity.Leaf == nil {
		return err
	}
	h, herr := KeyHash(c.identity.Leaf.PublicKey)
	if herr != nil {
		return err
	}
	return fmt.Errorf("the workload rejected this party's key %s, which its manifest does not list: %w", h, err)
}

// HTTPClient returns an HTTP client whose every connection goes through
// Dial. Requests use the URL https://workload/..., whose host name is
// ignored.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Minute,
		Transport: &http.Transport{
			DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				conn, err := c.Dial(ctx)
				if err != nil {
					return nil, err
				}
				// netConn hides the negotiated challenge protocol from
				// net/http, which would otherwise reject the connection.
				return netConn{conn.Conn}, nil
			},
			ForceAttemptHTTP2:   false,
			MaxIdleConnsPerHost: 2,
		},
	}
}

// netConn hides the *tls.Conn type from net/http.
type netConn struct{ net.Conn }

// manifestDecision is the appraisal rule "manifest": the claims' host data
// must bind the expected manifest digest.
func manifestDecision(c *attest.Claims, want Digest) *appraise.Decision {
	err := CheckManifest(c, want)
	if err == nil {
		return &appraise.Decision{Accepted: true}
	}
	return &appraise.Decision{Reasons: []appraise.Reason{{
		Rule: "manifest", Claim: "host_data", Value: c.HostData.String(), Expected: want.String(), Message: err.Error(),
	}}}
}
