package ratls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// ServerConfig returns a TLS 1.3 server configuration that presents the
// attested certificates of certs. When clients is not nil the server
// requires a client certificate and verifies it as an RA-TLS peer in the
// client role (mutual mode), rejecting a client that presents this
// server's own key, and offers ProtoMutualChallenge, whose connections
// ServeMutualChallenge serves with the same verifier. protos are
// application protocols to offer after the challenge protocols:
// ProtoMutualChallenge in mutual mode, then ProtoChallenge, which is
// always offered. Go servers pick the first protocol of this list that
// the client offers, so a client that offers both runs the mutual
// challenge. certs must not be nil.
func ServerConfig(certs *CertSource, clients *Verifier, protos ...string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: certs.GetCertificate,
		NextProtos:     append([]string{ProtoChallenge}, protos...),
	}
	if clients != nil {
		cfg.NextProtos = append([]string{ProtoMutualChallenge}, cfg.NextProtos...)
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyConnection(cs, clients, certs, RoleClient)
		}
	}
	return cfg
}

// ClientConfig returns a TLS 1.3 client configuration that verifies the
// server as an RA-TLS peer with v before any application data is sent.
// The usual certificate-chain and host-name checks are replaced by the
// evidence verification, because the certificate is self-signed and the
// evidence, not a CA, identifies the server. When own is not nil the
// client presents its own attested certificate (mutual mode). When
// challenge is true the client offers ProtoChallenge so that Dial can ask
// the server for evidence bound to this very connection, and with own it
// offers ProtoMutualChallenge first, so that a server in mutual mode can
// ask this client for fresh evidence in turn. Connections of such a
// configuration must be dialed with DialMutual and own's attester.
func ClientConfig(v *Verifier, own *CertSource, challenge bool, protos ...string) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// InsecureSkipVerify only turns off the CA-chain check;
		// VerifyConnection below verifies the evidence and the binding
		// and rejects the handshake on any failure.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyConnection(cs, v, own, RoleServer)
		},
		NextProtos: slices.Clone(protos),
	}
	if challenge {
		cfg.NextProtos = append([]string{ProtoChallenge}, cfg.NextProtos...)
		if own != nil {
			cfg.NextProtos = append([]string{ProtoMutualChallenge}, cfg.NextProtos...)
		}
	}
	if own != nil {
		cfg.GetClientCertificate = own.GetClientCertificate
	}
	return cfg
}

// verifyConnection verifies the peer's leaf certificate in the expected
// role and rejects this endpoint's own certificate reflected back.
func verifyConnection(cs tls.ConnectionState, v *Verifier, own *CertSource, role Role) error {
	if len(cs.PeerCertificates) == 0 {
		return reject(FormatName, nil, nil, attest.Errorf(attest.ErrBinding, "peer certificate", "the %s presented no certificate", role))
	}
	leaf := cs.PeerCertificates[0]
	if own != nil && own.ownsKey(leaf) {
		return reject(FormatName, nil, nil, attest.Errorf(attest.ErrBinding, "peer certificate",
			"the %s presented this endpoint's own certificate: its evidence is reflected, not the peer's", role).
			WithFix("each end must attest with its own key; a relay is replaying this endpoint's certificate"))
	}
	_, err := v.VerifyPeer(context.Background(), leaf, role)
	return err
}

// Conn is a verified RA-TLS client connection.
type Conn struct {
	*tls.Conn
	// Peer is the verification of the server's certificate.
	Peer *PeerResult
	// Fresh holds the claims of the evidence the server produced for this
	// connection's challenge, nil when no challenge ran.
	Fresh *attest.Claims
	// FreshAccepted is true when the server challenged this client
	// (ProtoMutualChallenge) and accepted its fresh evidence.
	FreshAccepted bool
}

// ErrNoChallenge reports a server that did not accept the challenge
// protocol when the client required it.
var ErrNoChallenge = errors.New("ratls: the server did not accept the freshness challenge")

// Dial connects to addr, verifies the server during the handshake and,
// when cfg offers ProtoChallenge, runs the freshness challenge before
// returning. With requireChallenge, a server that does not take the
// challenge is rejected with ErrNoChallenge. A configuration from
// ClientConfig with a certificate of the client's own needs DialMutual.
func Dial(ctx context.Context, network, addr string, cfg *tls.Config, v *Verifier, requireChallenge bool) (*Conn, error) {
	return DialMutual(ctx, network, addr, cfg, v, nil, requireChallenge)
}

// DialMutual is Dial for a client in mutual mode. When the server
// negotiates ProtoMutualChallenge, the client responds to the server's
// challenge with evidence from attester, which must be the attester of
// the CertSource given to ClientConfig: the server requires the TEE
// identity of the client's certificate. A nil attester fails such a
// connection.
func DialMutual(ctx context.Context, network, addr string, cfg *tls.Config, v *Verifier, attester attest.Attester, requireChallenge bool) (*Conn, error) {
	d := &tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 30 * time.Second}}
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := raw.(*tls.Conn)
	conn, err := verifyDialed(ctx, tc, v, attester, requireChallenge)
	if err != nil {
		tc.Close()
		return nil, err
	}
	return conn, nil
}

func verifyDialed(ctx context.Context, tc *tls.Conn, v *Verifier, attester attest.Attester, requireChallenge bool) (*Conn, error) {
	cs := tc.ConnectionState()
	// The handshake already verified the leaf; this lookup hits the cache.
	peer, err := v.VerifyPeer(ctx, cs.PeerCertificates[0], RoleServer)
	if err != nil {
		return nil, err
	}
	conn := &Conn{Conn: tc, Peer: peer}
	switch cs.NegotiatedProtocol {
	case ProtoChallenge:
		conn.Fresh, err = Challenge(ctx, tc, v, peer)
	case ProtoMutualChallenge:
		if attester == nil {
			return nil, fmt.Errorf("ratls: the server negotiated %s to challenge this client, but no attester was given to respond to it; dial with DialMutual and the attester of the client's CertSource", ProtoMutualChallenge)
		}
		conn.Fresh, err = MutualChallenge(ctx, tc, v, peer, attester)
		conn.FreshAccepted = err == nil
	default:
		if requireChallenge {
			return nil, fmt.Errorf("%w (negotiated protocol %q)", ErrNoChallenge, cs.NegotiatedProtocol)
		}
	}
	if err != nil {
		return nil, err
	}
	return conn, nil
}
