package kbs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/cloister-dev/cloister/internal/printable"
	"github.com/cloister-dev/cloister/store"
)

// nonceSize is the number of random bytes in a challenge nonce.
const nonceSize = 32

// handleAuth responds to a Request with a Challenge and a new session.
func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	reject := func(status int, cause string) {
		s.logger().Info("kbs auth rejected", "request_id", requestID(r), "reason", cause)
		p := NewProblem(ProblemAttestationError, "Attestation error: RCAR handshake Auth failed: "+cause)
		p.Status = status
		p.Write(w)
	}
	fail := func(cause string) { reject(http.StatusUnauthorized, cause) }

	body, release, err := s.readBody(w, r, s.maxAuthBody())
	var tooLarge *bodyTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		// Trustee (actix-web 4) also rejects a body over its limit with 413.
		reject(http.StatusRequestEntityTooLarge, err.Error())
		return
	case err != nil:
		fail(err.Error())
		return
	}
	defer release()
	req, err := ParseRequest(body)
	if err != nil {
		fail(err.Error())
		return
	}
	if !versionMatches(req.Version) {
		// Guests recognize an incompatible server by this exact phrase.
		fail("KBS Client Protocol Version Mismatch: expect =" + ProtocolVersion + " while the request is " +
			printable.Text(req.Version, maxEchoedValue))
		return
	}

	id, err := newID()
	if err != nil {
		fail("session ID generation failed")
		return
	}
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		fail("nonce generation failed")
		return
	}
	now := s.now()
	sess := store.Session{
		ID:      id,
		Nonce:   base64.StdEncoding.EncodeToString(nonce),
		TEE:     req.TEE,
		Created: now,
		Expires: now.Add(s.sessionTimeout()),
	}
	err = s.commit(func(ctx context.Context, tx store.Tx) error { return tx.CreateSession(ctx, sess) })
	if err != nil {
		s.logger().Error("kbs auth: store session failed", "request_id", requestID(r), "error", err)
		fail("session could not be stored")
		return
	}

	s.sessions.put(storedSession(sess), now)

	setSessionCookie(w, sess.ID, sess.Expires)
	// extra-params "" selects the default hash (SHA-384), as Trustee's
	// built-in attestation service does for every TEE it supports here.
	writeJSON(w, Challenge{Nonce: sess.Nonce, ExtraParams: json.RawMessage(`""`)})
}

// storedSession returns sess with its times at the microsecond precision
// the store keeps, so that the cache and the store agree on its expiry.
func storedSession(sess store.Session) store.Session {
	sess.Created = store.Stored(sess.Created)
	sess.Expires = store.Stored(sess.Expires)
	sess.State = store.SessionChallenged
	return sess
}

// buildMetadata is a semver build-metadata suffix: dot-separated
// non-empty identifiers of ASCII letters, digits and hyphens.
var buildMetadata = regexp.MustCompile(`^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$`)

// versionMatches implements the semver requirement =0.4.0: major, minor
// and patch equal, no pre-release, build metadata ignored.
func versionMatches(v string) bool {
	core, build, hasBuild := strings.Cut(v, "+")
	if hasBuild && !buildMetadata.MatchString(build) {
		return false
	}
	return core == ProtocolVersion
}

// bodyTooLargeError is the error for a request body over the server's
// limit. The fix it names is a smaller body, because the guest that reads it cannot
// change the limit (Server.MaxBodySize, which `cloister serve` does not
// expose).
type bodyTooLargeError struct {
	// limit is the size limit in bytes.
	limit int64
}

func (e *bodyTooLargeError) Error() string {
	return fmt.Sprintf("request body exceeds the limit of %d bytes; send a smaller body", e.limit)
}

// MaxAuthBodySize is the largest /auth body the server reads, 64 KiB. A
// Request contains only the version, the TEE name and the extra parameters, a
// few hundred bytes, so a larger limit would only let a client without a
// session make the server buffer more. Server.MaxBodySize lowers it when
// smaller.
const MaxAuthBodySize = 64 << 10

// maxAuthBody returns the /auth body limit: MaxAuthBodySize, or the
// server's body limit when that is smaller.
func (s *Server) maxAuthBody() int64 {
	return min(MaxAuthBodySize, s.maxBody())
}

// presizeLimit bounds the buffer readBody allocates for a declared
// Content-Length before any of the body arrives.
const presizeLimit = 64 << 10

// readBody reads the body of r, at most limit bytes, taking room in the
// server's body budget for the bytes as they arrive. The caller calls
// release once it no longer uses the body or anything decoded from it.
// A body that declares more than the limit is rejected before any of it is
// read.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), err error) {
	if r.ContentLength > limit {
		return nil, nil, &bodyTooLargeError{limit: limit}
	}
	// The budget holds at least the largest body of any endpoint,
	// whichever endpoint the first request came to.
	s.bodies.init(s.BodyBudget, s.maxBody())
	br := &budgetReader{ctx: r.Context(), r: http.MaxBytesReader(w, r.Body, limit), budget: &s.bodies}

	// A declared length sizes the buffer once, instead of doubling it as
	// it fills. The size is capped at presizeLimit, so that a client cannot
	// make the server allocate a large buffer by declaring a length it never
	// sends. The limit still applies to what is read.
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, limit, presizeLimit)) + 1)
	}
	_, err = buf.ReadFrom(br)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		err = &bodyTooLargeError{limit: tooLarge.Limit}
	case err != nil:
		err = fmt.Errorf("reading the request body: %w", err)
	}
	if err != nil {
		br.release()
		return nil, nil, err
	}
	return buf.Bytes(), br.release, nil
}

// writeJSON sends v as application/json with status 200.
func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeJSONBody(w, http.StatusOK, body)
}

// writeJSONBody sends body, JSON text, with status and a Content-Length.
// Without the length, net/http sends a body longer than its 2048-byte
// response buffer, such as an /attest response, in chunked encoding.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
