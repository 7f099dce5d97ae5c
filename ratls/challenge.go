package ratls

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/cloister-dev/cloister/attest"
)

// ProtoChallenge is the ALPN protocol name under which a client and a
// server run the freshness challenge right after the handshake.
const ProtoChallenge = "cloister-ratls-challenge/1"

// exporterLabel is the RFC 8446 exporter label of the challenge.
const exporterLabel = "EXPORTER-cloister-ratls-challenge"

// challengeMagic starts the client's challenge message.
var challengeMagic = []byte("CRC1")

const (
	challengeNonceSize = 32
	maxResponseSize    = 1 << 20
)

// challengeResponse is the server's reply: its fresh evidence.
type challengeResponse struct {
	Format   string `cbor:"format"`
	Evidence []byte `cbor:"evidence"`
	Aux      []byte `cbor:"aux,omitempty"`
}

// challengeReportData is the report data the server's fresh evidence must
// carry: SHA-512 of the deterministic CBOR map {"cloister-ratls":
// "challenge-v1", "role": "server", "exporter": E, "nonce": N}, where E
// is 32 bytes of this connection's TLS exporter and N the client's nonce.
func challengeReportData(exporter, nonce []byte) ([]byte, error) {
	buf, err := encMode.Marshal(map[string]any{
		claimBinding: "challenge-v1",
		claimRole:    string(RoleServer),
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
// otherwise. It reads the client's nonce and replies with evidence from
// attester over the nonce and the connection's exporter.
func ServeChallenge(ctx context.Context, conn *tls.Conn, attester attest.Attester) error {
	if conn.ConnectionState().NegotiatedProtocol != ProtoChallenge {
		return nil
	}
	defer setDeadline(ctx, conn)()

	msg := make([]byte, len(challengeMagic)+challengeNonceSize)
	if _, err := io.ReadFull(conn, msg); err != nil {
		return fmt.Errorf("ratls: reading the challenge: %w", err)
	}
	if !bytes.Equal(msg[:len(challengeMagic)], challengeMagic) {
		return fmt.Errorf("ratls: invalid challenge message (starts %x, expected %x)", msg[:len(challengeMagic)], challengeMagic)
	}
	ekm, err := exporter(conn)
	if err != nil {
		return fmt.Errorf("ratls: exporting keying material: %w", err)
	}
	rd, err := challengeReportData(ekm, msg[len(challengeMagic):])
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
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := conn.Write(append(frame, body...)); err != nil {
		return fmt.Errorf("ratls: writing the challenge response: %w", err)
	}
	return nil
}

// Challenge runs the client side of the challenge. It sends a fresh nonce
// and verifies the server's evidence over the nonce and the exporter. It
// then checks that the evidence comes from the same TEE identity (TEE,
// measurement, host data, chip ID) as the certificate's evidence, and
// returns the fresh claims.
func Challenge(ctx context.Context, conn *tls.Conn, v *Verifier, peer *PeerResult) (*attest.Claims, error) {
	defer setDeadline(ctx, conn)()

	nonce := make([]byte, challengeNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	if _, err := conn.Write(append(bytes.Clone(challengeMagic), nonce...)); err != nil {
		return nil, fmt.Errorf("ratls: sending the challenge: %w", err)
	}
	response, err := readResponse(conn)
	if err != nil {
		return nil, err
	}
	ekm, err := exporter(conn)
	if err != nil {
		return nil, err
	}
	want, err := challengeReportData(ekm, nonce)
	if err != nil {
		return nil, err
	}

	vo := v.opts.Attest
	vo.At, vo.Nonce = v.now(), nil
	claims, err := attest.Verify(ctx, attest.Evidence{Format: response.Format, Data: response.Evidence, Aux: response.Aux}, vo)
	if err != nil {
		return nil, v.rejectWithAppraisal(claims, err)
	}
	if !bytes.Equal(claims.ReportData, want) {
		claims.Fail("ratls-challenge-binding", "report data does not bind this connection and nonce")
		return nil, v.rejectWithAppraisal(claims, attest.Errorf(attest.ErrBinding, "challenge report data",
			"the fresh evidence does not bind this connection's exporter and the client's nonce, so it was produced for another session").
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

func readResponse(conn *tls.Conn) (*challengeResponse, error) {
	var n [4]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		return nil, fmt.Errorf("ratls: reading the challenge response: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > maxResponseSize {
		return nil, attest.Errorf(attest.ErrMalformed, "challenge response", "length %d is outside 1 to %d", size, maxResponseSize)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, fmt.Errorf("ratls: reading the challenge response: %w", err)
	}
	return parseResponse(body)
}

// parseResponse decodes the server's challenge response.
func parseResponse(body []byte) (*challengeResponse, error) {
	var a challengeResponse
	dm, err := cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField, MaxNestedLevels: 4}.DecMode()
	if err != nil {
		return nil, err
	}
	if err := dm.Unmarshal(body, &a); err != nil {
		return nil, attest.Malformed("challenge response", "not the expected CBOR map", err)
	}
	if len(a.Evidence) == 0 {
		return nil, attest.Errorf(attest.ErrMalformed, "challenge response", "evidence is empty")
	}
	return &a, nil
}

// sameIdentity requires the fresh evidence to come from the TEE that the
// certificate's evidence describes: the same TEE kind, primary measurement,
// host data and chip ID. The other named measurements are not compared,
// because runtime registers such as TDX RTMR3 or TPM PCRs may be extended
// between the certificate and the challenge. The fresh claims are
// appraised on their own, so a policy that pins those registers still
// applies to them.
func sameIdentity(cert, fresh *attest.Claims) error {
	checks := []struct {
		name string
		a, b []byte
	}{
		{"measurement", cert.Measurement, fresh.Measurement},
		{"host data", cert.HostData, fresh.HostData},
		{"chip ID", cert.ChipID, fresh.ChipID},
	}
	if cert.TEE != fresh.TEE {
		return attest.Errorf(attest.ErrBinding, "challenge tee", "fresh evidence is from a %s TEE, the certificate's from %s", fresh.TEE, cert.TEE)
	}
	for _, c := range checks {
		if !bytes.Equal(c.a, c.b) {
			return attest.Errorf(attest.ErrBinding, "challenge "+c.name, "the fresh evidence's %s differs from the certificate's", c.name).
				WithValues(attest.Hex(c.b).String(), attest.Hex(c.a).String())
		}
	}
	return nil
}
