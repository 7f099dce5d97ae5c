// Package admin is the authenticated HTTP API that operators use to manage
// the Cloister service's secrets, policies, reference values and audit log,
// and a Go client for it. The service mounts Handler under PathPrefix.
//
// Every request must authenticate, with a bearer key or with a TLS client
// certificate issued by a configured CA; anything else gets 401 with an
// RFC 7807 problem document. A JSON request body must be exactly one
// object whose member names are spelt as documented and appear once, and
// a query may name only the parameters its endpoint reads, each once, or
// the request gets 400. Every change appends an admin audit record in
// the same transaction as the change. Secret values can be written and
// deleted but never read back: they leave the service only through the key
// broker, to attested workloads. An empty secret value is rejected with
// 400. A policy is stored only after Config.ValidatePolicy accepts it, and
// without a validator every policy upload is rejected.
package admin

import (
	"crypto/ed25519"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloister-dev/cloister/store"
)

// PathPrefix is the URL path under which the service mounts the handler.
const PathPrefix = "/admin/v0/"

// DefaultMaxBodyBytes is the default request body limit. It fits the
// largest secret (store.MaxSecretSize) and the largest policy
// (store.MaxPolicySize).
const DefaultMaxBodyBytes = 1 << 20

// Config configures the admin API. At least one of APIKey, ClientCAs and
// TokenKeys must be set.
type Config struct {
	// Store holds the state the API manages.
	Store store.Store

	// APIKey is the bearer key: requests carry it as
	// "Authorization: Bearer <key>". Empty disables key authentication,
	// and NewHandler rejects a key shorter than MinKeySize.
	APIKey string

	// ClientCAs enables mutual TLS: a request whose TLS client certificate
	// chains to one of these CAs, with the client-authentication extended
	// key usage, is authenticated as the certificate's subject. The TLS
	// server must request client certificates (tls.RequestClientCert or
	// stronger); this handler verifies the chain itself.
	ClientCAs *x509.CertPool

	// TokenKeys are the Ed25519 public keys that sign admin tokens: JWTs
	// with alg EdDSA sent as "Authorization: Bearer <token>", the way
	// Trustee's kbs-client authenticates. A valid token is authenticated as
	// "ed25519:<first 16 hex digits of the key's SHA-256>", followed by its
	// sub claim when it has one. Empty disables token authentication.
	TokenKeys []ed25519.PublicKey

	// TokenRoles, when set, limits each admin token to the request URIs
	// that a rule for its role claim matches, like Trustee's regex ACL, and
	// rejects tokens without a role. Empty lets every valid token manage
	// everything.
	TokenRoles []TokenRole

	// TokenIssuer and TokenAudience, when set, must be the token's iss
	// claim and one of its aud values, as Trustee checks them when its
	// identity provider configures them.
	TokenIssuer   string
	TokenAudience string

	// TokenMaxLifetime is the maximum time from an admin token's iat to its
	// exp, or from now to its exp when it has no iat. Zero means
	// DefaultTokenMaxLifetime, and NewHandler rejects a negative value.
	TokenMaxLifetime time.Duration

	// MaxBodyBytes limits request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64

	// ValidatePolicy checks a policy module before it is stored, for
	// example by compiling the Rego. Its error is returned to the client
	// as 400. When it is nil, every policy upload is rejected, with 503 on
	// /admin/v0 and with a problem document on /kbs/v0.
	ValidatePolicy func(kind store.PolicyKind, name, module string) error

	// Logger receives one line per change and per failed authentication;
	// nil means slog.Default().
	Logger *slog.Logger

	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Handler serves the admin API.
type Handler struct {
	cfg      Config
	mux      *http.ServeMux
	rejected rejectionLog
}

// rejectionLog logs rejected requests at most once per interval, with the
// number left unlogged, so that a client retrying with a wrong key cannot
// flood the log.
type rejectionLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const rejectionLogInterval = 10 * time.Second

func (l *rejectionLog) log(logger *slog.Logger, now time.Time, r *http.Request, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) < rejectionLogInterval {
		l.suppressed++
		return
	}
	logger.Warn("admin request rejected", "remote", r.RemoteAddr, "method", r.Method,
		"path", r.URL.Path, "reason", reason, "rejections_not_logged", l.suppressed)
	l.last, l.suppressed = now, 0
}

// NewHandler returns the admin API handler for cfg.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("admin: no store configured")
	}
	if cfg.APIKey == "" && cfg.ClientCAs == nil && len(cfg.TokenKeys) == 0 {
		return nil, errors.New("admin: no authentication configured; set an API key, client CAs or token keys, because the admin API is never served without authentication")
	}
	if cfg.APIKey != "" && len(cfg.APIKey) < MinKeySize {
		return nil, fmt.Errorf("admin: the API key is %d bytes, expected at least %d, because anyone who guesses it manages every secret; generate one with: head -c 32 /dev/urandom | base64", len(cfg.APIKey), MinKeySize)
	}
	if err := checkTokenConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	p := strings.TrimSuffix(PathPrefix, "/")
	h.mux.HandleFunc("GET "+p+"/secrets", h.withQuery(h.listSecrets, "prefix"))
	h.mux.HandleFunc("PUT "+p+"/secrets/{path...}", h.withQuery(h.putSecret))
	h.mux.HandleFunc("DELETE "+p+"/secrets/{path...}", h.withQuery(h.deleteSecret))

	h.mux.HandleFunc("GET "+p+"/policies", h.withQuery(h.listPolicies, "kind"))
	h.mux.HandleFunc("GET "+p+"/policies/{kind}/{name}", h.withQuery(h.getPolicy))
	h.mux.HandleFunc("PUT "+p+"/policies/{kind}/{name}", h.withQuery(h.putPolicy))
	h.mux.HandleFunc("DELETE "+p+"/policies/{kind}/{name}", h.withQuery(h.deletePolicy))

	h.mux.HandleFunc("GET "+p+"/refvalues", h.withQuery(h.listReferenceValues, "name"))
	h.mux.HandleFunc("POST "+p+"/refvalues/{name}", h.withQuery(h.addReferenceValue))
	h.mux.HandleFunc("DELETE "+p+"/refvalues/{name}", h.withQuery(h.removeReferenceValue, "value"))

	h.mux.HandleFunc("GET "+p+"/audit", h.withQuery(h.listAudit, "action", "token_id", "after", "limit"))
	h.mux.HandleFunc("GET "+p+"/audit/verify", h.withQuery(h.verifyAudit))
	h.mux.HandleFunc("GET "+p+"/audit/head", h.withQuery(h.auditHead))

	// Every other method and path gets a problem document, not the plain
	// text of ServeMux.
	h.mux.HandleFunc(PathPrefix, func(w http.ResponseWriter, r *http.Request) {
		detail := "no admin endpoint for " + r.Method + " " + r.URL.Path + "; secret values can be written and deleted but never read"
		h.auditRejectedChange(r, http.StatusNotFound, detail)
		writeProblem(w, http.StatusNotFound, "Not found", detail)
	})
}

// withQuery returns next behind a check that the query names only the
// parameters in allowed, each at most once. A misspelt filter would
// otherwise be ignored, so that a listing, such as one of the audit log,
// looks complete while it is not what the operator requested.
func (h *Handler) withQuery(next http.HandlerFunc, allowed ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		query, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			h.writeError(w, r, badRequest("invalid query %q: %v", r.URL.RawQuery, err))
			return
		}
		for _, name := range slices.Sorted(maps.Keys(query)) {
			if !slices.Contains(allowed, name) {
				reads := "no query parameters"
				if len(allowed) > 0 {
					reads = "only " + strings.Join(allowed, ", ")
				}
				h.writeError(w, r, badRequest("unknown query parameter %q: %s %s reads %s", name, r.Method, r.URL.Path, reads))
				return
			}
			if n := len(query[name]); n > 1 {
				h.writeError(w, r, badRequest("query parameter %s is given %d times, so give it once", name, n))
				return
			}
		}
		next(w, r)
	}
}

// ServeHTTP authenticates the request, limits its body and routes it.
// Authentication runs before routing, so that an unauthenticated client
// learns nothing about which paths exist.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requester, reason := h.authenticate(r)
	if requester == "" {
		h.rejected.log(h.cfg.Logger, h.cfg.Now(), r, reason)
		w.Header().Set("WWW-Authenticate", `Bearer realm="cloister-admin"`)
		writeProblem(w, http.StatusUnauthorized, "Unauthorized",
			reason+"; the admin API requires a bearer key or an Ed25519-signed admin token (Authorization: Bearer <credential>), or a TLS client certificate from the configured CA")
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	r = r.WithContext(withRequester(r.Context(), requester))
	h.mux.ServeHTTP(w, r)
}

// authenticate returns the requester's identity, "client-cert:<subject>",
// "api-key" or the admin token's key (see Config.TokenKeys), or an empty
// identity and the reason for the rejection.
func (h *Handler) authenticate(r *http.Request) (requester, reason string) {
	reason = "no credentials"
	if h.cfg.ClientCAs != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		subject, err := h.verifyClientCertificate(r.TLS.PeerCertificates)
		if err == nil {
			return "client-cert:" + subject, ""
		}
		reason = fmt.Sprintf("client certificate %q rejected: %v", r.TLS.PeerCertificates[0].Subject, err)
	}
	credential, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return "", reason
	}
	if h.cfg.APIKey != "" && subtle.ConstantTimeCompare([]byte(credential), []byte(h.cfg.APIKey)) == 1 {
		return "api-key", ""
	}
	if len(h.cfg.TokenKeys) > 0 && looksLikeJWT(credential) {
		return h.authenticateToken(r, credential)
	}
	switch {
	case h.cfg.APIKey != "":
		return "", "wrong bearer key: it is not this service's admin key (admin.key in its data directory, or " + KeyEnv + "). Replicas that share a database each need the same admin key"
	case len(h.cfg.TokenKeys) > 0:
		return "", "the bearer credential is not an admin token (a JWT)"
	}
	return "", reason
}

func (h *Handler) verifyClientCertificate(certs []*x509.Certificate) (string, error) {
	intermediates := x509.NewCertPool()
	for _, c := range certs[1:] {
		intermediates.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         h.cfg.ClientCAs,
		Intermediates: intermediates,
		CurrentTime:   h.cfg.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return "", err
	}
	return certs[0].Subject.String(), nil
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header. The scheme is case-insensitive (RFC 9110, section 11.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
