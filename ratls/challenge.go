package ratls

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/printable"
)

// ProtoChallenge is the ALPN protocol name under which a client and a
// server run the freshness challenge right after the handshake.
const ProtoChallenge = "cloister-ratls-challenge/1"

// ProtoMutualChallenge is the ALPN protocol name under which the server,
// after responding to the client's challenge as under ProtoChallenge, also
// challenges the client for fresh evidence. Servers offer it only in
// mutual mode and clients only with a certificate of their own, both
// before ProtoChallenge, so that peers that know only ProtoChallenge
// still agree on that.
const ProtoMutualChallenge = "cloister-ratls-challenge/2"

// exporterLabel is the RFC 8446 exporter label of the challenge.
const exporterLabel = "EXPORTER-cloister-ratls-challenge"

var (
	// challengeMagic starts the client's challenge message under
	// ProtoChallenge, and mutualChallengeMagic under ProtoMutualChallenge,
	// so that a message of one version is never read as the other.
	challengeMagic       = []byte("CRC1")
	mutualChallengeMagic = []byte("CRC2")
	// serverChallengeMagic starts the server's challenge message under
	// ProtoMutualChallenge.
	serverChallengeMagic = []byte("CRS2")
)

const (
	challengeNonceSize = 32
	maxResponseSize    = 1 << 20
	// maxClientResponseSize bounds the client's challenge response that a
	// server reads. crypto/tls accepts certificate messages of up to 256
	// KiB (Go 1.26), so evidence that fits into a client certificate fits
	// here too.
	maxClientResponseSize = 256 << 10
)

// The server's verdict on the client's challenge response is one byte.
// Zero rejects, so that only the one defined value accepts.
const (
	verdictRejected byte = 0
	verdictAccepted byte = 1
)

// ErrChallengeRejected reports a server that rejected this client's
// response to its challenge. The server keeps the reason to itself, as it
// does for a rejected client certificate.
var ErrChallengeRejected = errors.New("ratls: the server rejected this client's fresh evidence")

// challengeResponse is a challenge response: the fresh evidence of the
// challenged end.
type challengeResponse struct {
	Format   string `cbor:"format"`
	Evidence []byte `cbor:"evidence"`
	Aux      []byte `cbor:"aux,omitempty"`
}

// challengeReportData is the report data that the fresh evidence of the
// given role must carry: SHA-512 of the deterministic CBOR map
// {"cloister-ratls": "challenge-v1", "role": role, "exporter": E,
// "nonce": N}, where E is 32 bytes of this connection's TLS exporter and N
// the other end's nonce. The role keeps a response of one end from ever
// passing as the other end's.
func challengeReportData(role Role, exporter, nonce []byte) ([]byte, error) {
	buf, err := encMode.Marshal(map[string]any{
		claimBinding: "challenge-v1",
		claimRole:    string(role),
		"exporter":   exporter,
		claimNonce:   nonce,
	})
	if err != nil {
		return nil, err
	}
	sum := sha512.Sum512(buf)
	return sum[:], nil
}

func exporter(conn *tls.Conn) ([]byte, error) {
	cs := conn.ConnectionState()
	return cs.ExportKeyingMaterial(exporterLabel, nil, 32)
}

func setDeadline(ctx context.Context, conn *tls.Conn) func() {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	conn.SetDeadline(deadline)
	return func() { conn.SetDeadline(time.Time{}) }
}

// ServeChallenge runs the server side of the challenge on a handshaken
// connection when the client negotiated ProtoChallenge, and does nothing
// when it negotiated neither challenge protocol. It reads the client's
// nonce and replies with evidence from attester over the nonce and the
// connection's exporter. A client that negotiated ProtoMutualChallenge is
// rejected, because serving it needs the client verifier that
// ServeMutualChallenge takes.
func ServeChallenge(ctx context.Context, conn *tls.Conn, attester attest.Attester) error {
	switch protocol := conn.ConnectionState().NegotiatedProtocol; protocol {
	case ProtoChallenge:
		defer setDeadline(ctx, conn)()
		return respondToClient(ctx, conn, attester, challengeMagic)
	case ProtoMutualChallenge:
		return fmt.Errorf("ratls: the client negotiated %s, which ServeChallenge cannot serve; call ServeMutualChallenge with the client verifier", protocol)
	}
	return nil
}

// ServeMutualChallenge runs the server side of the negotiated challenge
// in mutual mode. Under ProtoChallenge it does what ServeChallenge does
// and returns nil claims. Under ProtoMutualChallenge it then challenges
// the client, verifies the client's fresh evidence with clients, the
// verifier of the client certificates, requires the TEE identity of the
// client's certificate, sends the verdict and returns the fresh claims.
// Without a negotiated challenge protocol it does nothing.
func ServeMutualChallenge(ctx context.Context, conn *tls.Conn, attester attest.Attester, clients *Verifier) (*attest.Claims, error) {
	if conn.ConnectionState().NegotiatedProtocol != ProtoMutualChallenge {
		return nil, ServeChallenge(ctx, conn, attester)
	}
	if clients == nil {
		return nil, fmt.Errorf("ratls: the client negotiated %s but the server has no client verifier; build the server's configuration with ServerConfig and a client verifier, and pass the same verifier here", ProtoMutualChallenge)
	}
	defer setDeadline(ctx, conn)()
	if err := respondToClient(ctx, conn, attester, mutualChallengeMagic); err != nil {
		return nil, err
	}
	return challengeClient(ctx, conn, clients)
}

// respondToClient reads the client's challenge message, which starts with
// magic, and writes evidence from attester over the client's nonce and
// the connection's exporter.
func respondToClient(ctx context.Context, conn *tls.Conn, attester attest.Attester, magic []byte) error {
	msg := make([]byte, len(magic)+challengeNonceSize)
	if _, err := io.ReadFull(conn, msg); err != nil {
		return fmt.Errorf("ratls: reading the challenge: %w", err)
	}
	if !bytes.Equal(msg[:len(magic)], magic) {
		return fmt.Errorf("ratls: invalid challenge message (starts %x, expected %x)", msg[:len(magic)], magic)
	}
	return writeResponse(ctx, conn, attester, RoleServer, msg[len(magic):], maxResponseSize)
}

// writeResponse writes a challenge response: evidence from attester over
// the other end's nonce and the connection's exporter, bound to role.
func writeResponse(ctx context.Context, conn *tls.Conn, attester attest.Attester, role Role, nonce []byte, limit int) error {
	ekm, err := exporter(conn)
	if err != nil {
		return fmt.Errorf("ratls: exporting keying material: %w", err)
	}
	rd, err := challengeReportData(role, ekm, nonce)
	if err != nil {
		return err
	}
	ev, err := attester.Attest(ctx, rd)
	if err != nil {
		return fmt.Errorf("ratls: collecting challenge evidence from %s: %w", attester.Name(), err)
	}
	body, err := encMode.Marshal(challengeResponse{Format: ev.Format, Evidence: ev.Data, Aux: ev.Aux})
	if err != nil {
		return err
	}
	if len(body) > limit {
		return attest.Errorf(attest.ErrUnsupported, "challenge response", "the %s evidence from %s encodes to %d bytes, more than the %d that the other end reads",
			ev.Format, attester.Name(), len(body), limit)
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := conn.Write(append(frame, body...)); err != nil {
		return fmt.Errorf("ratls: writing the challenge response: %w", err)
	}
	return nil
}

// challengeClient runs the server's half of ProtoMutualChallenge: it
// sends a fresh nonce, reads the client's response and sends the
// verdict. The verdict is sent only for a response that was read, so a
// client that drops the connection or runs past the deadline gets none.
func challengeClient(ctx context.Context, conn *tls.Conn, clients *Verifier) (*attest.Claims, error) {
	cs := conn.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return nil, fmt.Errorf("ratls: the client negotiated %s without a client certificate; the server must require one (ServerConfig with a client verifier)", ProtoMutualChallenge)
	}
	// The handshake verified this certificate, so the lookup hits the
	// cache unless the entry has expired since.
	peer, err := clients.VerifyPeer(ctx, cs.PeerCertificates[0], RoleClient)
	if err != nil {
		return nil, err
	}

	nonce, err := sendChallenge(conn, serverChallengeMagic, RoleClient)
	if err != nil {
		return nil, err
	}
	response, err := readResponse(conn, maxClientResponseSize, RoleClient)
	if err != nil {
		// A malformed response gets the verdict. After an I/O error the
		// connection is broken, so none is sent.
		var malformed *attest.Error
		if errors.As(err, &malformed) {
			sendVerdict(conn, verdictRejected)
		}
		return nil, err
	}
	claims, err := verifyClientResponse(ctx, conn, clients, peer, response, nonce)
	if err != nil {
		sendVerdict(conn, verdictRejected)
		return nil, err
	}
	if err := sendVerdict(conn, verdictAccepted); err != nil {
		return nil, err
	}
	return claims, nil
}

func verifyClientResponse(ctx context.Context, conn *tls.Conn, clients *Verifier, peer *PeerResult, response *challengeResponse, nonce []byte) (*attest.Claims, error) {
	ekm, err := exporter(conn)
	if err != nil {
		return nil, fmt.Errorf("ratls: exporting keying material: %w", err)
	}
	want, err := challengeReportData(RoleClient, ekm, nonce)
	if err != nil {
		return nil, err
	}
	return clients.verifyFresh(ctx, response, want, peer, RoleClient)
}

func sendVerdict(conn *tls.Conn, verdict byte) error {
	if _, err := conn.Write([]byte{verdict}); err != nil {
		return fmt.Errorf("ratls: sending the verdict on the client's challenge response: %w", err)
	}
	return nil
}

// Challenge runs the client side of ProtoChallenge. It sends a fresh
// nonce and verifies the server's evidence over the nonce and the
// exporter. It then checks that the evidence comes from the same TEE
// identity (TEE, measurement, host data, chip ID) as the certificate's
// evidence, and returns the fresh claims. A connection that negotiated
// ProtoMutualChallenge is rejected, because the server will challenge the
// client in turn, which MutualChallenge handles.
func Challenge(ctx context.Context, conn *tls.Conn, v *Verifier, peer *PeerResult) (*attest.Claims, error) {
	if protocol := conn.ConnectionState().NegotiatedProtocol; protocol == ProtoMutualChallenge {
		return nil, fmt.Errorf("ratls: the server negotiated %s, which Challenge cannot complete; call MutualChallenge with this client's attester", protocol)
	}
	defer setDeadline(ctx, conn)()
	return challengeServer(ctx, conn, v, peer, challengeMagic)
}

// MutualChallenge runs the client side of ProtoMutualChallenge. It
// challenges the server as Challenge does, then responds to the server's
// challenge with evidence from attester, which must be the TEE of this
// client's certificate. It returns the server's fresh claims, or
// ErrChallengeRejected when the server rejects the client's evidence.
func MutualChallenge(ctx context.Context, conn *tls.Conn, v *Verifier, peer *PeerResult, attester attest.Attester) (*attest.Claims, error) {
	defer setDeadline(ctx, conn)()
	fresh, err := challengeServer(ctx, conn, v, peer, mutualChallengeMagic)
	if err != nil {
		return nil, err
	}
	if err := respondToServer(ctx, conn, attester); err != nil {
		return nil, err
	}
	return fresh, nil
}

// sendChallenge writes magic and a fresh random nonce to the peer in role
// to, and returns the nonce.
func sendChallenge(conn *tls.Conn, magic []byte, to Role) ([]byte, error) {
	nonce := make([]byte, challengeNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	if _, err := conn.Write(append(bytes.Clone(magic), nonce...)); err != nil {
		return nil, fmt.Errorf("ratls: sending the challenge to the %s: %w", to, err)
	}
	return nonce, nil
}

func challengeServer(ctx context.Context, conn *tls.Conn, v *Verifier, peer *PeerResult, magic []byte) (*attest.Claims, error) {
	nonce, err := sendChallenge(conn, magic, RoleServer)
	if err != nil {
		return nil, err
	}
	response, err := readResponse(conn, maxResponseSize, RoleServer)
	if err != nil {
		return nil, err
	}
	ekm, err := exporter(conn)
	if err != nil {
		return nil, err
	}
	want, err := challengeReportData(RoleServer, ekm, nonce)
	if err != nil {
		return nil, err
	}
	return v.verifyFresh(ctx, response, want, peer, RoleServer)
}

// respondToServer reads the server's challenge, writes evidence from
// attester over the server's nonce and reads the server's verdict.
func respondToServer(ctx context.Context, conn *tls.Conn, attester attest.Attester) error {
	msg := make([]byte, len(serverChallengeMagic)+challengeNonceSize)
	if _, err := io.ReadFull(conn, msg); err != nil {
		return fmt.Errorf("ratls: reading the server's challenge: %w", err)
	}
	if !bytes.Equal(msg[:len(serverChallengeMagic)], serverChallengeMagic) {
		return attest.Errorf(attest.ErrMalformed, "server challenge", "the message starts %x, expected %x", msg[:len(serverChallengeMagic)], serverChallengeMagic)
	}
	if err := writeResponse(ctx, conn, attester, RoleClient, msg[len(serverChallengeMagic):], maxClientResponseSize); err != nil {
		return err
	}
	var verdict [1]byte
	if _, err := io.ReadFull(conn, verdict[:]); err != nil {
		return fmt.Errorf("ratls: reading the server's verdict on this client's fresh evidence: %w", err)
	}
	switch verdict[0] {
	case verdictAccepted:
		return nil
	case verdictRejected:
		return ErrChallengeRejected
	}
	return attest.Errorf(attest.ErrMalformed, "challenge verdict", "byte %#x is neither %#x (accepted) nor %#x (rejected)", verdict[0], verdictAccepted, verdictRejected)
}

// verifyFresh verifies fresh evidence of the peer in role against the
// report data want, requires the TEE identity of the peer's certificate
// and appraises the claims with v's appraisal and policy.
func (v *Verifier) verifyFresh(ctx context.Context, response *challengeResponse, want []byte, peer *PeerResult, role Role) (claims *attest.Claims, err error) {
	// A rejection names the peer's certificate, so that the caller can
	// save it or the operator can revoke it.
	defer func() {
		var rej *RejectionError
		if errors.As(err, &rej) && rej.Certificate == nil {
			rej.Certificate = peer.Certificate
		}
	}()
	// The fresh evidence must have the format of the certificate's, so that
	// the peer cannot pick which verifier reads it, such as a certificate
	// verifier or format detection.
	if certFormat, _ := peer.Claims.Attributes[AttrFormat].(string); certFormat != "" && response.Format != certFormat {
		return nil, v.rejectWithAppraisal(nil, attest.Errorf(attest.ErrBinding, "challenge response format",
			"the %s's fresh evidence has the format %s, its certificate's evidence %q", role, printable.Quote(response.Format, 64), certFormat))
	}
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	vo := v.opts.Attest
	vo.At, vo.Nonce = v.now(), nil
	claims, err = attest.Verify(ctx, attest.Evidence{Format: response.Format, Data: response.Evidence, Aux: response.Aux}, vo)
	if err != nil {
		return nil, v.rejectWithAppraisal(claims, err)
	}
	if !bytes.Equal(claims.ReportData, want) {
		challenger := RoleClient
		if role == RoleClient {
			challenger = RoleServer
		}
		claims.Fail("ratls-challenge-binding", "report data does not bind this connection and nonce")
		return nil, v.rejectWithAppraisal(claims, attest.Errorf(attest.ErrBinding, "challenge report data",
			"the %s's fresh evidence does not bind this connection's exporter and the %s's nonce, so it was produced for another session", role, challenger).
			WithValues(attest.Hex(claims.ReportData).String(), attest.Hex(want).String()))
	}
	claims.Pass("ratls-challenge-binding")
	if err := sameIdentity(peer.Claims, claims); err != nil {
		return nil, v.rejectWithAppraisal(claims, err)
	}
	if err := v.appraise(ctx, claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// readResponse reads a length-prefixed challenge response of at most
// limit bytes from the peer in role from. It reads the body as it arrives
// rather than allocating the announced length, so that a peer that
// announces a large response and sends nothing holds little memory.
func readResponse(r io.Reader, limit uint32, from Role) (*challengeResponse, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, fmt.Errorf("ratls: reading the %s's challenge response: %w", from, err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > limit {
		return nil, attest.Errorf(attest.ErrMalformed, string(from)+" challenge response", "length %d is outside 1 to %d", size, limit)
	}
	body, err := io.ReadAll(io.LimitReader(r, int64(size)))
	if err != nil {
		return nil, fmt.Errorf("ratls: reading the %s's challenge response: %w", from, err)
	}
	if len(body) < int(size) {
		return nil, fmt.Errorf("ratls: reading the %s's challenge response: %w after %d of %d bytes", from, io.ErrUnexpectedEOF, len(body), size)
	}
	return parseResponse(body)
}

// responseDecMode decodes challenge responses strictly: no duplicate or
// unknown map keys, no indefinite lengths, bounded nesting. It is built
// once, because every challenged connection decodes a response.
var responseDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField, MaxNestedLevels: 4}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// parseResponse decodes a challenge response.
func parseResponse(body []byte) (*challengeResponse, error) {
	var a challengeResponse
	if err := responseDecMode.Unmarshal(body, &a); err != nil {
		return nil, attest.Malformed("challenge response", "not the expected CBOR map", err)
	}
	if len(a.Evidence) == 0 {
		return nil, attest.Errorf(attest.ErrMalformed, "challenge response", "evidence is empty")
	}
	return &a, nil
}

// identityMeasurements names, per TEE, the named measurements besides
// Claims.Measurement that stay fixed while a TEE runs and identify its
// code, so that sameIdentity compares them too. For TDX, Measurement is
// MRTD, which covers only the firmware. The kernel, its command line and
// the workload are in RTMR0 to RTMR2, and the owner's configuration is in
// MRCONFIGID, MROWNER and MROWNERCONFIG. RTMR3 is left out, because the
// guest extends it while it runs. For SGX, MRSIGNER names the enclave's
// signer beside MRENCLAVE.
//
// NOTE: Linux lets root in a TDX guest extend RTMR0 to RTMR2 too (the
// tdx_guest measurements in sysfs). A guest that does so after issuing its
// certificate fails every challenge until the certificate renews, which
// an agent does after at most 30 minutes.
var identityMeasurements = map[attest.TEE][]string{
	attest.TEETDX: {"rtmr0", "rtmr1", "rtmr2", "mrconfigid", "mrowner", "mrownerconfig"},
	attest.TEESGX: {"mrsigner"},
}

// sameIdentity requires the fresh evidence to come from the TEE that the
// certificate's evidence describes: the same TEE kind, primary measurement,
// host data, chip ID and the TEE's identityMeasurements. The other named
// measurements are not compared, because runtime registers such as TDX
// RTMR3 or TPM PCRs may be extended between the certificate and the
// challenge. The fresh claims are appraised on their own, so a policy
// that pins those registers still applies to them.
func sameIdentity(cert, fresh *attest.Claims) error {
	return sameIdentityAs(cert, fresh, "challenge", "fresh evidence")
}

// sameIdentityAs is sameIdentity for other evidence than the challenge's.
// field prefixes the error's field, and otherName names the other evidence
// in messages.
func sameIdentityAs(cert, other *attest.Claims, field, otherName string) error {
	if cert.TEE != other.TEE {
		return attest.Errorf(attest.ErrBinding, field+" tee", "the %s is from a %s TEE, the certificate's evidence from %s", otherName, other.TEE, cert.TEE)
	}
	checks := []struct {
		name string
		a, b []byte
	}{
		{"measurement", cert.Measurement, other.Measurement},
		{"host data", cert.HostData, other.HostData},
		{"chip ID", cert.ChipID, other.ChipID},
	}
	for _, c := range checks {
		if err := sameValue(field, otherName, c.name, c.a, c.b); err != nil {
			return err
		}
	}
	for _, name := range identityMeasurements[cert.TEE] {
		if err := sameValue(field, otherName, name, cert.Measurements[name], other.Measurements[name]); err != nil {
			return err
		}
	}
	return nil
}

// sameValue returns a binding error naming name when the value of the
// other evidence differs from the certificate's.
func sameValue(field, otherName, name string, cert, other []byte) error {
	if bytes.Equal(cert, other) {
		return nil
	}
	return attest.Errorf(attest.ErrBinding, field+" "+name, "the %s's %s differs from the certificate's", otherName, name).
		WithValues(attest.Hex(other).String(), attest.Hex(cert).String())
}
