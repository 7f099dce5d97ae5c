// Package server is Cloister's attestation service: the Trustee KBS
// protocol under /kbs/v0/, the admin API under /admin/v0/, the EAR signing
// keys at /.well-known/jwks.json, Prometheus metrics at /metrics, and
// /healthz and /readyz. It wires the verifiers (attest), the Rego policies
// (policy), the token issuer (ear), the KBS handlers (kbs) and the store.
//
// Policies come from the store and are managed through the admin API: the
// attestation policy of a TEE is the attestation policy named after it
// ("snp", "tdx", ...), falling back to policy.DefaultAttestation; the
// resource policy is the resource policy named "default", falling back to
// policy.DefaultResource. Reference values, such as "snp.measurement",
// reach the attestation policy as data.reference_values.
package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/store"
)

// Body size limits per route. KBS bodies carry evidence, and the KBS
// route takes kbs.DefaultMaxBodySize, which fits the largest TDX CC event
// log beside composite evidence with GPUs.
const (
	maxAdminBody = 1 << 20
	maxOtherBody = 4 << 10
	// maxHeaderBytes admits bearer tokens with embedded device evidence,
	// which can exceed 128 KiB.
	maxHeaderBytes = 512 << 10
)

// HTTP server timeouts. The guest gives /attest 60 seconds.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = 90 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 30 * time.Second
	sessionSweep      = time.Minute
	// unopenableCheckTimeout bounds the periodic count of secrets sealed
	// under other master keys.
	unopenableCheckTimeout = 10 * time.Second
)

// Request deadlines. A handler receives the deadline in its request's
// context, so store queries, collateral fetches and appraisal stop at it
// and the handler responds with its usual error.
const (
	// DefaultRequestTimeout is the deadline of a request when
	// Config.RequestTimeout is zero. It is shorter than the 60-second
	// request timeout of the KBS client in Trustee's guest components
	// (KBS_REQ_TIMEOUT_SEC in kbs_protocol), so the guest still receives
	// the error.
	DefaultRequestTimeout = 50 * time.Second
	// probeTimeout is the longest deadline of /healthz and /readyz, which
	// load balancers and orchestrators poll with short timeouts of their
	// own.
	probeTimeout = 5 * time.Second
	// writeTimeoutMargin is the time the server's WriteTimeout leaves a
	// handler after its deadline. A group commit that started before the
	// deadline runs to its own 30-second bound, and a rejection's audit
	// record gets 5 seconds more. The other 10 seconds are for writing the
	// response, so that a committed release or attestation still reaches
	// the client.
	writeTimeoutMargin = 45 * time.Second
)

// errRequestTimeout is the cause of a request context that reached its
// deadline, so that the log line can distinguish it from a client that
// disconnected.
var errRequestTimeout = errors.New("request timed out")

// Config configures a Server.
type Config struct {
	// Store is the service's state; the Server does not close it.
	Store store.Store
	// SigningKey signs EAR tokens (P-256, ES256).
	SigningKey *ecdsa.PrivateKey
	// TokenLifetime is the EAR token lifetime; zero means
	// ear.DefaultLifetime, and New rejects a negative value.
	TokenLifetime time.Duration
	// SessionTimeout is the KBS session and nonce lifetime; zero means
	// kbs.DefaultSessionTimeout, and New rejects a negative value.
	SessionTimeout time.Duration
	// CommitDelay is how long a batch of KBS session writes and audit
	// records waits for more writes while other requests are in flight.
	// Zero means kbs.DefaultCommitDelay. A negative value commits at once.
	CommitDelay time.Duration
	// AllowEmulated lets the default attestation policy accept emulated
	// TEEs. Emulated evidence verifies only against TrustAnchors.
	AllowEmulated bool
	// TCBStatuses replaces the accepted TCB statuses when not empty. New
	// rejects the statuses that appraise.ValidateTCBStatuses rejects.
	TCBStatuses []string
	// MinTCBEvaluationDataNumber, when not 0, is the lowest Intel TCB
	// evaluation data number that the default attestation policies accept
	// for SGX and TDX evidence.
	MinTCBEvaluationDataNumber uint32
	// MaxVMPL, when not nil, is the highest VMPL of SEV-SNP evidence that
	// the default attestation policies accept.
	MaxVMPL *uint32
	// TrustAnchors are explicitly trusted roots, such as the development
	// root of an emulated TEE.
	TrustAnchors *collateral.Set
	// Collateral supplies certificates, CRLs and TCB documents offline.
	Collateral collateral.Source
	// Admin, when set, serves /admin/v0/. It authenticates its callers
	// itself.
	Admin http.Handler
	// ClientCAs, when set, makes the TLS listener verify client
	// certificates that clients choose to present, so that the admin API
	// can authenticate callers by mutual TLS. KBS clients present none.
	ClientCAs *x509.CertPool
	// PCCS, when set, serves cached Intel collateral under the PCCS API
	// paths /sgx/certification/v4/ and /tdx/certification/v4/.
	PCCS http.Handler
	// Issuer is the iss claim of EAR tokens.
	Issuer string
	// TrustRequestID makes a well-formed X-Request-Id from the caller the
	// request's ID in logs and audit records. Without it every request
	// gets a new random ID, because a caller could otherwise give many
	// audit records one ID, or give its records another caller's ID. The
	// caller's ID then appears only as client_request_id in the request's
	// log line. Set it only behind a proxy that replaces any X-Request-Id
	// a client sent, on every request.
	TrustRequestID bool
	// RequestTimeout is the deadline of each request, counted from the
	// moment its handler starts. Zero means DefaultRequestTimeout.
	// /healthz and /readyz get at most 5 seconds. Store reads, policy
	// evaluation and collateral fetches stop at the deadline. A group
	// commit already under way does not, because its transaction carries
	// other requests' writes too. Serve sets the HTTP server's WriteTimeout
	// at least 45 seconds longer, so that the response still goes out.
	RequestTimeout time.Duration
	// AuditCheckpointInterval is the interval at which Serve reads the
	// audit chain head and logs it as an "audit checkpoint" line when it
	// moved. Serve
	// also logs the head when it starts and after a graceful shutdown.
	// Zero means DefaultAuditCheckpointInterval, and a negative value
	// disables these lines.
	AuditCheckpointInterval time.Duration
	// Logger receives JSON logs; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Server is the HTTP service.
type Server struct {
	cfg     Config
	kbs     *kbs.Server
	signer  *ear.Signer
	metrics *metrics
	log     *slog.Logger
	handler http.Handler

	// masterKeyMismatch is set while this service's master keys open none
	// of the stored secrets, which makes /readyz fail.
	masterKeyMismatch atomic.Bool
}

// New builds a Server from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.SigningKey == nil {
		return nil, errors.New("server: Store and SigningKey are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "cloister"
	}
	if cfg.RequestTimeout < 0 {
		return nil, fmt.Errorf("server: RequestTimeout %v is negative; use a positive duration, or zero for the default of %v",
			cfg.RequestTimeout, DefaultRequestTimeout)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.AuditCheckpointInterval == 0 {
		cfg.AuditCheckpointInterval = DefaultAuditCheckpointInterval
	}
	if cfg.SessionTimeout < 0 {
		return nil, fmt.Errorf("server: SessionTimeout %v is negative; use a positive duration, or zero for the default of %v",
			cfg.SessionTimeout, kbs.DefaultSessionTimeout)
	}
	if cfg.TokenLifetime < 0 {
		return nil, fmt.Errorf("server: TokenLifetime %v is negative; use a positive duration, or zero for the default of %v",
			cfg.TokenLifetime, ear.DefaultLifetime)
	}
	if cfg.TokenLifetime > 0 && cfg.TokenLifetime < time.Second {
		// EAR's iat and exp are whole seconds, and Verify requires exp after iat.
		return nil, fmt.Errorf("server: TokenLifetime %v is under one second, so its tokens could expire as they are issued; use at least 1s, or zero for the default of %v",
			cfg.TokenLifetime, ear.DefaultLifetime)
	}
	if err := appraise.ValidateTCBStatuses(cfg.TCBStatuses); err != nil {
		return nil, fmt.Errorf("server: invalid TCBStatuses: %w; remove it", err)
	}
	signer, err := ear.NewSigner(cfg.SigningKey)
	if err != nil {
		return nil, err
	}
	signer.Lifetime = cfg.TokenLifetime
	signer.Issuer = cfg.Issuer
	// The resource request that follows an attestation brings back the
	// token just issued; remembering it spares checking this service's
	// own signature again. Tokens from other replicas are verified in full.
	signer.Issued = &ear.Issued{}

	m := newMetrics()
	engine := policy.NewEngine()
	s := &Server{cfg: cfg, signer: signer, metrics: m, log: cfg.Logger}
	cache := newConfigCache(cfg.Store)
	s.kbs = &kbs.Server{
		Store: cachingStore{Store: cfg.Store, cache: cache},
		Appraiser: &appraiser{
			cache:  cache,
			engine: engine,
			verify: attest.Options{Collateral: cfg.Collateral, TrustAnchors: cfg.TrustAnchors},
			config: policy.Config{AllowEmulated: cfg.AllowEmulated, TCBStatuses: cfg.TCBStatuses, MinTCBEvaluationDataNumber: cfg.MinTCBEvaluationDataNumber, MaxVMPL: cfg.MaxVMPL},
			now:    cfg.Now,
			verifyTimer: func(d time.Duration) {
				m.verifyLatency.Observe(d.Seconds())
			},
		},
		Authz:          &authorizer{cache: cache, engine: engine},
		Signer:         signer,
		Tokens:         &ear.Verifier{Keys: signer.JWKS(), Issuer: cfg.Issuer, Issued: signer.Issued},
		SessionTimeout: cfg.SessionTimeout,
		CommitDelay:    cfg.CommitDelay,
		MaxBodySize:    kbs.DefaultMaxBodySize,
		Logger:         cfg.Logger,
		Observer:       m,
		Now:            cfg.Now,
	}
	s.handler = s.routes()
	return s, nil
}

// JWKS returns the public keys that verify the service's EAR tokens.
func (s *Server) JWKS() jose.JSONWebKeySet { return s.signer.JWKS() }

// Handler returns the service's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	timeout := s.cfg.RequestTimeout
	probe := min(timeout, probeTimeout)
	mux := http.NewServeMux()
	kbsRoute := s.route("kbs", kbs.DefaultMaxBodySize, timeout, withRequestGeneration(s.kbs))
	mux.Handle("/kbs/v0/", kbsRoute)
	if s.cfg.Admin != nil {
		mux.Handle("/admin/v0/", s.route("admin", maxAdminBody, timeout, s.cfg.Admin))
	}
	if t, ok := s.cfg.Admin.(trusteeAdmin); ok {
		h := s.route("kbs-admin", maxAdminBody, timeout, t.Trustee())
		for _, pattern := range t.TrusteeRoutes() {
			mux.Handle(pattern, h)
		}
	}
	if s.cfg.PCCS != nil {
		mux.Handle("GET /sgx/certification/v4/", s.route("pccs", maxOtherBody, timeout, s.cfg.PCCS))
		mux.Handle("GET /tdx/certification/v4/", s.route("pccs", maxOtherBody, timeout, s.cfg.PCCS))
	}
	mux.Handle("GET /.well-known/jwks.json", s.route("jwks", maxOtherBody, timeout, http.HandlerFunc(s.handleJWKS)))
	mux.Handle("GET /metrics", s.route("metrics", maxOtherBody, timeout,
		promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError)})))
	mux.Handle("GET /healthz", s.route("healthz", maxOtherBody, probe, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})))
	mux.Handle("GET /readyz", s.route("readyz", maxOtherBody, probe, http.HandlerFunc(s.handleReady)))
	mux.Handle("/", s.route("other", maxOtherBody, timeout, http.NotFoundHandler()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// ServeMux redirects a path that is not clean to its cleaned form,
		// which for /kbs/v0/resource/x/../default/key/db names another
		// resource. Guests follow redirects and parse every 401 and 404
		// body, so such a path goes to the KBS, which rejects it with a
		// KBS error body.
		if uncleanKBSPath(r.URL.Path) {
			kbsRoute.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// uncleanKBSPath reports whether p is /kbs/v0 or a path under /kbs/v0/
// that ServeMux would redirect: one with an empty, "." or ".." segment.
func uncleanKBSPath(p string) bool {
	if p == "/kbs/v0" {
		return true
	}
	if !strings.HasPrefix(p, "/kbs/v0/") {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") {
		clean += "/"
	}
	return clean != p
}

// trusteeAdmin is an admin handler that also serves Trustee's admin
// endpoints under /kbs/v0 (set resource, resource policy, attestation
// policy, reference value), such as *admin.Handler. The service routes the
// patterns it lists there instead of to the KBS; guests use none of them.
type trusteeAdmin interface {
	Trustee() http.Handler
	TrusteeRoutes() []string
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	body, err := ear.MarshalJWKS(s.signer.JWKS())
	if err != nil {
		s.log.Error("encoding the EAR signing JWKS failed", "ear_key_id", s.signer.KeyID(), "error", err)
		http.Error(w, "internal error: the signing keys could not be encoded; the server log has the cause", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write(body)
}

// handleReady responds 200 when a store read succeeds within 2 seconds and
// the last count of stored secrets found some that the master keys open,
// or none stored.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	_, err := s.cfg.Store.GetSession(ctx, "readiness-probe")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("readiness check failed: store unreachable", "error", err)
		http.Error(w, "store unreachable: check the database connection; the server log has the cause", http.StatusServiceUnavailable)
		return
	}
	if s.masterKeyMismatch.Load() {
		http.Error(w, "master key mismatch: this replica's master key opens none of the stored secrets; start it with the key that sealed them (the server log names their key IDs)", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// route wraps h with a body limit, a request ID, a deadline of timeout, a
// log line and metrics. A request that reached its deadline is logged as
// "http request timed out".
func (s *Server) route(name string, maxBody int64, timeout time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id, clientID := s.requestID(r.Header.Get("X-Request-Id"))
		r.Header.Set("X-Request-Id", id)
		w.Header().Set("X-Request-Id", id)
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		ctx, cancel := context.WithTimeoutCause(r.Context(), timeout, errRequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)

		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)

		d := time.Since(start)
		s.metrics.requests.WithLabelValues(name, strconv.Itoa(rec.status)).Inc()
		s.metrics.requestLatency.WithLabelValues(name).Observe(d.Seconds())
		timedOut := errors.Is(context.Cause(ctx), errRequestTimeout)
		level := slog.LevelDebug
		if timedOut {
			level = slog.LevelWarn
		}
		// A failing probe logs its cause itself, and a load balancer
		// repeats probes, so they stay out of the error log.
		if rec.status >= 500 && name != "readyz" {
			level = slog.LevelError
		}
		// Most requests log at debug level, which is usually disabled, so
		// the attributes are built only for an enabled level.
		if !s.log.Enabled(ctx, level) {
			return
		}

		attrs := []any{"request_id", id, "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration_ms", float64(d.Microseconds()) / 1000}
		if clientID != "" {
			attrs = append(attrs, "client_request_id", clientID)
		}
		if timedOut {
			attrs = append(attrs, "route", name, "timeout", timeout.String(),
				"fix", "check the latency of the database and of online collateral fetches")
			s.log.Log(ctx, level, "http request timed out", attrs...)
			return
		}
		s.log.Log(ctx, level, "http request", attrs...)
	})
}

// requestID returns the ID of a request whose X-Request-Id header is
// header, and the caller's ID to log beside it. With TrustRequestID a
// well-formed header is the ID. Otherwise the ID is new and a well-formed
// header is only the caller's ID.
func (s *Server) requestID(header string) (id, clientID string) {
	if !kbs.IsRequestID(header) {
		return newRequestID(), ""
	}
	if s.cfg.TrustRequestID {
		return header, ""
	}
	return newRequestID(), header
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Serve serves on ln until ctx is done, then shuts down gracefully:
// in-flight requests get 30 seconds to finish. With certFile and keyFile
// set it serves TLS (1.2 or later). It logs the audit chain head as
// "audit checkpoint" lines (see Config.AuditCheckpointInterval).
func (s *Server) Serve(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      s.writeTimeout(),
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if s.cfg.ClientCAs != nil {
		srv.TLSConfig.ClientCAs = s.cfg.ClientCAs
		srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
	}

	// The first count runs before the listener serves, so that /readyz
	// does not report ready on a replica with the wrong master key, unless
	// that count fails.
	s.countUnopenableSecrets(ctx)
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go s.sweepSessions(sweepCtx)
	var checkpoints *auditCheckpointer
	checkpointsDone := make(chan struct{})
	if s.cfg.AuditCheckpointInterval > 0 {
		checkpoints = &auditCheckpointer{store: s.cfg.Store, log: s.log, interval: s.cfg.AuditCheckpointInterval}
		go func() {
			defer close(checkpointsDone)
			checkpoints.run(sweepCtx)
		}()
	} else {
		close(checkpointsDone)
	}
	// Serve returns only after the checkpoint goroutine, so that it logs
	// no line after Serve returned, also when the listener failed.
	defer func() {
		stopSweep()
		<-checkpointsDone
	}()

	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	s.log.Info("cloister service started", "address", ln.Addr().String(), "tls", certFile != "",
		"allow_emulated", s.cfg.AllowEmulated, "store", s.cfg.Store.Dialect(), "ear_key_id", s.signer.KeyID())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("cloister service stopping", "reason", context.Cause(ctx))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if checkpoints != nil {
		// Every request has returned, so the head read now includes
		// the records of every request this service handled.
		<-checkpointsDone
		checkpoints.check(context.WithoutCancel(ctx), checkpointAtShutdown, true)
	}
	s.log.Info("cloister service stopped")
	return nil
}

// writeTimeout returns the HTTP server's WriteTimeout: 90 seconds, or
// longer when the request deadline leaves less than writeTimeoutMargin
// after it to write the response.
func (s *Server) writeTimeout() time.Duration {
	return max(writeTimeout, s.cfg.RequestTimeout+writeTimeoutMargin)
}

// sweepSessions deletes expired sessions and nonces every minute, and
// counts the stored secrets that this service cannot open.
func (s *Server) sweepSessions(ctx context.Context) {
	t := time.NewTicker(sessionSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.cfg.Store.ExpireSessions(ctx, s.cfg.Now())
			if err != nil {
				s.log.Error("expire KBS sessions failed", "error", err)
			} else if n > 0 {
				s.log.Debug("expired KBS sessions", "count", n)
			}
			s.countUnopenableSecrets(ctx)
		}
	}
}

// countUnopenableSecrets sets the cloister_secrets_unopenable gauge, and
// marks the service not ready when its master keys open none of the stored
// secrets, so that a replica started with another master key shows before
// a guest requests a secret. Unopenable secrets beside openable ones only
// raise the gauge, because the replica can still release the others. A
// failed count leaves both as they were.
func (s *Server) countUnopenableSecrets(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, unopenableCheckTimeout)
	defer cancel()
	list, stored, err := s.cfg.Store.UnopenableSecrets(ctx)
	if err != nil {
		s.log.Error("count secrets sealed under other master keys failed", "error", err)
		return
	}
	s.metrics.unopenable.Set(float64(len(list)))
	mismatch := stored > 0 && len(list) == stored
	if s.masterKeyMismatch.Swap(mismatch) == mismatch {
		return
	}
	if mismatch {
		s.log.Error("master key opens none of the stored secrets; /readyz fails until the replica runs with the key that sealed them",
			"stored", stored, "sealed_under", sealingKeyIDs(list))
	} else {
		s.log.Info("master key opens the stored secrets again; /readyz no longer reports a master key mismatch")
	}
}

// sealingKeyIDs returns the distinct master key IDs of list, sorted.
func sealingKeyIDs(list []store.SecretInfo) []string {
	var ids []string
	for _, info := range list {
		ids = append(ids, info.MasterKeyID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func splitPath(p string) []string { return strings.Split(p, "/") }
