package kbs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/internal/printable"
	"github.com/cloister-dev/cloister/store"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "kbs-session-id"

// Defaults of the Server's limits.
const (
	// DefaultSessionTimeout is the session and nonce lifetime, counted
	// from /auth and never extended.
	DefaultSessionTimeout = 5 * time.Minute
	// DefaultMaxBodySize bounds /attest bodies: 9,786,729 bytes
	// (about 9.3 MiB), so that the largest CC event log the TDX verifier
	// accepts fits beside the rest of the evidence. The body nests the
	// primary evidence as raw JSON, not as a JSON string, so the log costs
	// its standard base64 and the member that carries it: maxEventLogSize,
	// 4 MiB, encodes to 5,592,408 bytes, and eventLogMember adds 17. The
	// other 4 MiB are the limit from before guests sent event logs, for
	// the quote, the runtime data, the init data and the device evidence,
	// whose GPU reports can approach Trustee's 2 MiB default.
	DefaultMaxBodySize = (maxEventLogSize+2)/3*4 + int64(len(eventLogMember)) + 4<<20
)

// maxEventLogSize is dcap.MaxEventLogSize, the largest CC event log the
// TDX verifier accepts. It is copied because importing tee/dcap would
// register the DCAP verifier and the TDX and SGX attesters in every
// program that uses kbs, and a test checks that the two values are equal.
const maxEventLogSize = 4 << 20

// eventLogMember is the longer of the two members that carry an event log
// in the primary evidence, without the log's base64: cc_eventlog in the
// JSON of Trustee's TDX attester, and aux in Cloister's evidence
// envelope.
const eventLogMember = `,"cc_eventlog":""`

// Verdict is the outcome of verifying and appraising one piece of
// evidence.
type Verdict struct {
	Claims *attest.Claims
	// ClaimsJSON, when not nil, is the JSON encoding of Claims, which the
	// server then hashes for the claims digest instead of encoding Claims
	// again.
	ClaimsJSON []byte
	Decision   *appraise.Decision
	// PolicyID names the appraisal policy and its digest.
	PolicyID     string
	PolicyDigest string
	// EvidenceDigest is the hex SHA-256 of the evidence bytes.
	EvidenceDigest string
	// CollateralDigest is the hex SHA-256 over the digests of the
	// collateral items the verifier used.
	CollateralDigest string
}

// ErrPolicyEvaluation marks an Appraiser error that comes from evaluating
// the attestation policy rather than from the evidence, such as a policy
// whose deny reasons have the wrong shape. The server logs it as an error,
// because the operator must fix the policy.
var ErrPolicyEvaluation = errors.New("attestation policy evaluation failed")

// Appraiser verifies and appraises evidence for the KBS.
type Appraiser interface {
	// Appraise verifies ev, the evidence of the KBS tee, and appraises the
	// claims. An error means the evidence did not verify; a rejection by
	// the policy is a Verdict whose Decision is not accepted.
	Appraise(ctx context.Context, tee string, ev attest.Evidence) (*Verdict, error)
}

// Authorizer decides whether a verified token may read a resource. It
// takes the claim set as JSON text so that code outside this module can
// implement it.
type Authorizer interface {
	// Allow decides whether the holder of a verified token whose claim set
	// is claimsJSON, one JSON object, may read the resource at path
	// ("repository/type/tag"). An error means the policy could not be
	// evaluated, and the Authorization then still names the policy when it
	// is known. Allow must not change claimsJSON, because the token
	// verifier's cache shares it with later requests for the same token.
	Allow(ctx context.Context, claimsJSON []byte, path string, query map[string][]string) (Authorization, error)
}

// Authorization is the decision of a resource policy.
type Authorization struct {
	Allowed bool
	// PolicyID names the resource policy and its version, as
	// "name@sha256:digest", for logs and errors.
	PolicyID string
	// PolicyDigest is the hex SHA-256 of the policy text, for the audit
	// log.
	PolicyDigest string
	// Reasons explain a denial, one readable text per failed rule of the
	// policy, such as "cpu-status: <message> (claim <name>, value
	// <value>, expected <value>)". The server puts them in the log line
	// and the audit record, never in the response, whose body the KBS
	// protocol fixes. Reasons is empty when the request is allowed and
	// when the policy gives no reasons.
	Reasons []string
	// ReasonsFailed is true when the policy's reasons rule failed, so that
	// Reasons holds only that failure. The request stays denied, and the
	// server logs a warning, because the policy needs a fix.
	ReasonsFailed bool
}

// Observer receives the events that metrics count. Its methods must not
// block. An Observer that is also a CommitObserver receives the group
// commits too.
type Observer interface {
	Attestation(tee string, status string, d time.Duration)
	Release(outcome string, d time.Duration)
}

// Server serves the KBS endpoints under /kbs/v0/.
type Server struct {
	Store     store.Store
	Appraiser Appraiser
	Authz     Authorizer
	Signer    *ear.Signer
	// Tokens verifies bearer tokens; it must trust Signer's key.
	Tokens *ear.Verifier
	// SessionTimeout is the session and nonce lifetime; zero means
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	// MaxBodySize bounds request bodies; zero means DefaultMaxBodySize.
	// An /auth body is also bounded by MaxAuthBodySize.
	MaxBodySize int64
	// BodyBudget bounds the bytes of the /auth and /attest bodies that
	// the server keeps in memory at one time, counted as they arrive. A
	// request whose next bytes do not fit waits until earlier requests
	// finish or its own context ends. Zero means DefaultBodyBudget. A
	// budget below the body size limit is raised to it.
	BodyBudget int64
	// CommitDelay is how long a batch of session writes and audit records
	// waits for more writes before it commits, while at least four other
	// KBS requests are in flight, so that one sync serves more requests.
	// Zero means DefaultCommitDelay; a negative value commits at once.
	CommitDelay time.Duration
	Logger      *slog.Logger
	// Observer, if set, receives the events that metrics count.
	Observer Observer
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	batch    txBatcher
	sessions sessionCache
	bodies   bodyBudget
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) sessionTimeout() time.Duration {
	if s.SessionTimeout > 0 {
		return s.SessionTimeout
	}
	return DefaultSessionTimeout
}

// commit runs fn through the group commit of session writes and audit
// records, and returns after its transaction committed or failed.
func (s *Server) commit(fn func(ctx context.Context, tx store.Tx) error) error {
	observer, _ := s.Observer.(CommitObserver)
	return s.batch.do(s.Store, s.commitDelay(), observer, fn)
}

func (s *Server) commitDelay() time.Duration {
	if s.CommitDelay == 0 {
		return DefaultCommitDelay
	}
	return s.CommitDelay
}

func (s *Server) maxBody() int64 {
	if s.MaxBodySize > 0 {
		return s.MaxBodySize
	}
	return DefaultMaxBodySize
}

// ServeHTTP routes /kbs/v0/auth, /kbs/v0/attest and GET
// /kbs/v0/resource/<repository>/<type>/<tag>. In Trustee, a POST or DELETE
// on a resource path writes the resource. This handler serves no admin API,
// so it rejects them as a Trustee whose admin mode denies all does: 401
// AdminAuthInitialization. Any other path, and a method the protocol does
// not define, gets the response Trustee sends: 404 PluginNotFound with the
// error body that guests parse.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/kbs/v0/")
	if !ok {
		NewProblem(ProblemInvalidRequestPath, "Request path "+printable.Text(r.URL.Path, maxEchoedValue)+" is invalid").Write(w)
		return
	}
	plugin, _, _ := strings.Cut(rest, "/")
	s.batch.active.Add(1)
	defer s.batch.active.Add(-1)
	switch {
	case rest == "auth" && r.Method == http.MethodPost:
		s.handleAuth(w, r)
	case rest == "attest" && r.Method == http.MethodPost:
		s.handleAttest(w, r)
	case plugin == "resource" && r.Method == http.MethodGet:
		s.handleResource(w, r, resourcePath(r.URL))
	case plugin == "resource" && (r.Method == http.MethodPost || r.Method == http.MethodDelete):
		s.rejectResourceWrite(w, r)
	default:
		NewProblem(ProblemPluginNotFound, "Plugin "+printable.Text(plugin, maxEchoedValue)+" not found").Write(w)
	}
}

// rejectResourceWrite rejects a POST or DELETE on a resource path, which
// in Trustee sets or deletes the resource after an admin check.
func (s *Server) rejectResourceWrite(w http.ResponseWriter, r *http.Request) {
	path := printable.Text(r.URL.Path, maxEchoedValue)
	s.logger().Info("kbs resource write rejected: no admin API", "request_id", requestID(r), "method", r.Method, "path", path)
	detail := "Admin access denied: " + r.Method + " " + path + " would write a resource, but this KBS endpoint serves no admin API. " +
		"Write resources through the admin API: PUT or DELETE /admin/v0/secrets/<repository>/<type>/<tag> " +
		"(cloister secret put), or this request on a server that serves Trustee's admin endpoints"
	NewProblem(ProblemAdminAuthInitialization, detail).Write(w)
}

// resourcePath returns the resource path of a request to
// /kbs/v0/resource/..., the segments after the fourth slash of the escaped
// URL path, each decoded. A segment whose decoding contains a slash stays
// escaped, so that resourcepath.Check rejects its '%' instead of reading
// one segment as two. A bare /kbs/v0/resource names the empty path, which
// handleResource rejects.
func resourcePath(u *url.URL) string {
	// RawPath, when set, is the path as the request sent it. EscapedPath
	// would instead encode Path again, and so lose an encoded slash, when
	// RawPath contains a character that it would have encoded.
	escaped := u.RawPath
	if escaped == "" {
		escaped = u.EscapedPath()
	}
	segments := strings.Split(escaped, "/")
	// segments[0] is empty, and segments 1 to 3 are kbs, v0 and resource.
	if len(segments) < 5 {
		return ""
	}
	rest := segments[4:]
	for i, segment := range rest {
		if decoded, err := url.PathUnescape(segment); err == nil && !strings.Contains(decoded, "/") {
			rest[i] = decoded
		}
	}
	return strings.Join(rest, "/")
}

// newID returns a random UUID v4 in simple form (32 lower-case hex digits),
// the form of Trustee's session IDs.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:]), nil
}

// setSessionCookie sets the session cookie with only an Expires attribute,
// as Trustee does: guests apply the default path /kbs/v0 and send it back
// on plain HTTP too.
func setSessionCookie(w http.ResponseWriter, id string, expires time.Time) {
	w.Header().Add("Set-Cookie", SessionCookie+"="+id+"; Expires="+expires.UTC().Format(http.TimeFormat))
}

// sessionRef names a session in logs and audit records by the first 16
// hex digits of the SHA-256 of its ID, because the ID itself is a
// credential: its cookie fetches resources.
func sessionRef(id string) string {
	if id == "" {
		return ""
	}
	return store.SessionRef(id)
}

// session returns session id from the cache, or else from the store. The
// second result reports whether it came from the cache.
func (s *Server) session(ctx context.Context, id string) (*store.Session, bool, error) {
	if sess, ok := s.sessions.get(id, s.now()); ok {
		return &sess, true, nil
	}
	sess, err := s.Store.GetSession(ctx, id)
	return sess, false, err
}

// requestID returns the request ID the service's middleware set, for logs.
func requestID(r *http.Request) string { return r.Header.Get("X-Request-Id") }
