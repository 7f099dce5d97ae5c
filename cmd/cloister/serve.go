package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/collateral/pccs"
	"github.com/cloister-dev/cloister/collateral/storecache"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/server"
	"github.com/cloister-dev/cloister/store"
)

func init() { register(newServeCmd) }

type serveFlags struct {
	listen         string
	dataDir        string
	databaseURL    string
	masterKeyFile  string
	tlsCert        string
	tlsKey         string
	allowEmulated  bool
	trustRequestID bool
	trustAnchors   []string
	collateral     []string
	tcbStatuses    []string
	// minEvaluationNumber is 0 for no minimum.
	minEvaluationNumber uint32
	// maxVMPL is empty for any VMPL.
	maxVMPL        string
	online         onlineFlags
	servePCCS      bool
	adminClientCA  string
	adminTokenKeys string
	adminTokenRole []string
	adminTokenIss  string
	adminTokenAud  string
	adminTokenLife time.Duration
	tokenLifetime  time.Duration
	sessionTimeout time.Duration
	commitDelay    time.Duration
	requestTimeout time.Duration
	// checkpointInterval is 0 to log no audit checkpoints.
	checkpointInterval time.Duration
	logLevel           string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the attestation service and key broker",
		Long: `Run Cloister's attestation service: the Trustee KBS protocol (version 0.4.0)
under /kbs/v0/, the admin API under /admin/v0/, the EAR token keys at
/.well-known/jwks.json, Prometheus metrics at /metrics, and /healthz and
/readyz.

With no flags it stores its state in an embedded SQLite database in the data
directory and listens on 127.0.0.1:8080 without TLS. The data directory also
holds the EAR signing key and the admin API key, each created on first start
with mode 0600. CLOISTER_ADMIN_KEY overrides the admin key file.

The master key that encrypts secrets is kept out of the data directory. The
service reads it from --master-key-file or CLOISTER_MASTER_KEY (base64 of 32
bytes), and setting both is an error. With neither, it uses master.key in
the data directory only if an earlier version created it there, and logs a
warning. Otherwise it uses cloister/master.key in the user configuration
directory ($XDG_CONFIG_HOME or ~/.config on Linux), which it generates with
mode 0600 on first start. It rejects a --master-key-file inside the data
directory unless the store is PostgreSQL. Replicas that share a PostgreSQL
database must share the master key and the EAR signing key: a token signed
by one replica verifies only with its key, and secrets decrypt only with the
master key that wrapped them.

Attestation policies are the store's attestation policies named after each
TEE ("snp", "tdx", ...), the resource policy is the resource policy named
"default"; without them the built-in defaults apply. Manage them, secrets and
reference values with cloister policy, secret and refvalue.`,
		Example: `  cloister serve
  cloister serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
  cloister serve --database-url postgres://cloister@db/cloister
  cloister serve --data-dir /var/lib/cloister --master-key-file /etc/cloister/master.key
  cloister serve --allow-emulated --trust-anchor snp=dev-tee/ark.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runServe(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address to listen on, host:port")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory of the SQLite database, the EAR signing key and the admin key (default: $XDG_DATA_HOME/cloister or ~/.local/share/cloister)")
	// The default is read at run time, not given to the flag, because the
	// help text prints a flag's default and the URL may hold a password.
	fl.StringVar(&f.databaseURL, "database-url", "", "PostgreSQL connection URL (postgres://...) instead of SQLite (default: $"+databaseURLEnv+")")
	fl.StringVar(&f.masterKeyFile, "master-key-file", "", "existing file with the master key that encrypts secrets (base64 of 32 bytes, mode 0600), outside the data directory unless --database-url is set; not together with $"+store.MasterKeyEnv+" (default: cloister/master.key in the user configuration directory, generated on first start with SQLite)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate chain for TLS on the listener")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	fl.BoolVar(&f.allowEmulated, "allow-emulated", false, "let the default attestation policy accept emulated TEEs (development only)")
	fl.StringArrayVar(&f.trustAnchors, "trust-anchor", nil, "root certificate or public key to trust explicitly, such as an emulated TEE's development root; repeatable"+scopeHelp)
	fl.StringArrayVar(&f.collateral, "collateral", nil, "directory or file of collateral (certificates, CRLs, Intel TCB Info and QE Identity, keys, NVIDIA RIMs, OCSP responses) for offline verification; repeatable"+scopeHelp)
	fl.StringArrayVar(&f.tcbStatuses, "tcb-status", nil, "accepted TCB status (default: UpToDate and SWHardeningNeeded; NoMatchingTcbLevel is never accepted); repeatable")
	fl.StringVar(&f.maxVMPL, "max-vmpl", "", maxVMPLHelp+"; applies to the default attestation policies and is input.config.max_vmpl of stored ones")
	fl.Uint32Var(&f.minEvaluationNumber, "min-tcb-evaluation-data-number", 0, minTCBEvaluationDataNumberHelp+"; applies to the default attestation policies and is input.config.min_tcb_evaluation_data_number of stored ones")
	fl.DurationVar(&f.tokenLifetime, "token-lifetime", ear.DefaultLifetime, "lifetime of EAR attestation-result tokens")
	fl.DurationVar(&f.sessionTimeout, "session-timeout", kbs.DefaultSessionTimeout, "lifetime of KBS sessions and their nonces, from /auth")
	fl.DurationVar(&f.commitDelay, "commit-delay", kbs.DefaultCommitDelay, "how long a batch of session writes and audit records waits for more writes before its synced commit, while at least four other KBS requests are in flight; 0 commits at once")
	fl.DurationVar(&f.requestTimeout, "request-timeout", server.DefaultRequestTimeout, "deadline of each HTTP request, after which it gets its error response; keep it below the 60 s request timeout of the KBS client in Trustee's guest components")
	fl.DurationVar(&f.checkpointInterval, "audit-checkpoint-interval", server.DefaultAuditCheckpointInterval, "how often to log the audit chain head (seq and hash) as an \"audit checkpoint\" line when it moved, besides at start and at shutdown; 0 disables these lines. Keep them outside the database and check them with cloister audit verify --checkpoint SEQ:HEX")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.BoolVar(&f.trustRequestID, "trust-request-id", false, "use a caller's X-Request-Id (1 to 64 letters, digits, '.', '_' or '-') as the request ID in logs and audit records; set it only behind a proxy that replaces any X-Request-Id a client sent, because otherwise a caller chooses the ID of its audit records (default: a new ID per request, with the caller's logged as client_request_id)")
	fl.StringVar(&f.adminClientCA, "admin-client-ca", "", "PEM CA certificates; admin API clients presenting a TLS client certificate they issued are authenticated without the admin key (needs --tls-cert)")
	fl.StringVar(&f.adminTokenKeys, "admin-token-keys", "", "PEM file of Ed25519 public keys; admin API and Trustee kbs-client calls with an EdDSA token (JWT) that one of them signed are authenticated without the admin key")
	fl.StringVar(&f.adminTokenIss, "admin-token-issuer", "", "when set, admin tokens must carry this iss claim (needs --admin-token-keys)")
	fl.StringVar(&f.adminTokenAud, "admin-token-audience", "", "when set, admin tokens must carry this value in their aud claim (needs --admin-token-keys)")
	fl.DurationVar(&f.adminTokenLife, "admin-token-max-lifetime", admin.DefaultTokenMaxLifetime, "maximum time from an admin token's iat claim to its exp claim, or from now to exp when the token has no iat; longer-lived tokens are rejected (applies with --admin-token-keys)")
	fl.StringArrayVar(&f.adminTokenRole, "admin-token-role", nil, "ROLE=REGEXP: admin tokens whose role claim is ROLE may call the request URIs REGEXP matches (REGEXP must start with ^ and end with $) with any HTTP method, so a rule that allows reading a path allows writing it too, as in Trustee; when given, tokens without a matching rule are rejected; repeatable (needs --admin-token-keys)")
	fl.BoolVar(&f.servePCCS, "serve-pccs", true, "serve cached Intel collateral under the PCCS API paths /sgx/certification/v4/ and /tdx/certification/v4/")
	f.online.bind(cmd)
	fl.Lookup("cache-dir").Hidden = true // the service keeps its cache in its store
	return cmd
}

// databaseURLEnv names the environment variable with the default of
// --database-url.
const databaseURLEnv = "CLOISTER_DATABASE_URL"

func runServe(cmd *cobra.Command, f serveFlags) error {
	// An explicit --database-url "" still chooses SQLite.
	if !cmd.Flags().Changed("database-url") {
		f.databaseURL = os.Getenv(databaseURLEnv)
	}
	logger, err := jsonLogger(f.logLevel)
	if err != nil {
		return err
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usageError("--tls-cert and --tls-key must be given together")
	}
	if f.tokenLifetime <= 0 || f.sessionTimeout <= 0 {
		return usageError("--token-lifetime and --session-timeout must be positive")
	}
	if f.tokenLifetime < time.Second {
		return usageError("--token-lifetime %s is under one second, so tokens could expire as they are issued: use at least 1s", f.tokenLifetime)
	}
	if f.requestTimeout <= 0 {
		return usageError("--request-timeout %s must be positive, such as %s", f.requestTimeout, server.DefaultRequestTimeout)
	}
	if f.checkpointInterval < 0 {
		return usageError("--audit-checkpoint-interval %s is negative: use a positive duration, such as %s, or 0 to log no audit checkpoints",
			f.checkpointInterval, server.DefaultAuditCheckpointInterval)
	}
	if f.commitDelay < 0 || f.commitDelay > maxCommitDelay {
		return usageError("--commit-delay %s is out of range: use 0 to %s", f.commitDelay, maxCommitDelay)
	}
	if err := appraise.ValidateTCBStatuses(f.tcbStatuses); err != nil {
		return usageError("invalid --tcb-status: %v (correct or remove that --tcb-status)", err)
	}
	maxVMPL, err := parseVMPL("--max-vmpl", f.maxVMPL)
	if err != nil {
		return err
	}
	tokenKeys, tokenRoles, err := f.adminTokens()
	if err != nil {
		return err
	}

	dataDir := f.dataDir
	if dataDir == "" {
		var err error
		if dataDir, err = store.DefaultDataDir(); err != nil {
			return usageError("%v", err)
		}
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return usageError("create data directory: %v", err)
	}

	anchors, err := loadCollateral("--trust-anchor", f.trustAnchors, false)
	if err != nil {
		return err
	}
	coll, err := loadCollateral("--collateral", f.collateral, false)
	if err != nil {
		return err
	}
	warnUnscopedAnchors(logger, anchors, coll)

	masterKey, err := loadServeMasterKey(masterKeyConfig{
		flagPath: f.masterKeyFile,
		envValue: os.Getenv(store.MasterKeyEnv),
		dataDir:  dataDir,
		sqlite:   f.databaseURL == "",
	}, logger)
	if err != nil {
		return err
	}
	if f.databaseURL == "" {
		warnNewSQLiteBesideKeys(logger, dataDir)
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	storeCfg := store.Config{MasterKey: masterKey.key, Logger: logger}
	if f.databaseURL != "" {
		storeCfg.DatabaseURL = f.databaseURL
	} else {
		storeCfg.DataDir = dataDir
	}
	st, err := store.Open(ctx, storeCfg)
	if err != nil {
		return usageError("%v", err)
	}
	defer st.Close()
	logger.Info("opened store", "store", st.Dialect(), "database", storeCfg.Location())
	if err := masterKey.checkStore(ctx, st, logger); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return usageError("listen on %s: %v; stop the process that uses the address, or choose another with --listen", f.listen, err)
	}
	defer ln.Close()

	// The signing and admin keys are created only once the store is open,
	// its secrets match the master key and the address is free. A failed
	// start therefore leaves no new key behind that would differ from the
	// keys the other replicas use.
	signingKey, signingCreated, err := ear.LoadOrCreateKey(dataDir)
	if err != nil {
		return usageError("%v", err)
	}
	if signingCreated {
		logger.Info("generated EAR signing key", "path", filepath.Join(dataDir, ear.KeyFile))
	}
	adminKey, adminCreated, err := admin.LoadOrCreateKey(admin.DefaultKeyPath(dataDir), os.Getenv(admin.KeyEnv))
	if err != nil {
		return usageError("%v", err)
	}
	if adminCreated {
		logger.Info("generated admin API key", "path", admin.DefaultKeyPath(dataDir))
	}

	// The collateral cache lives in the store, so that replicas sharing one
	// database fetch each item from AMD and Intel once.
	cache := storecache.Backend{Cache: st.Collateral()}
	var collSource collateral.Source = coll
	var online *collateral.Online
	if f.online.enabled {
		online = f.online.source()
		online.Cache = &collateral.Cache{Backend: cache, Logger: logger}
		collSource = collateral.Sources{coll, online}
	}
	var pccsHandler http.Handler
	if f.servePCCS {
		pccsHandler = (&pccs.Handler{Backend: cache, Online: online, Logger: logger}).Mux()
	}

	adminCfg := admin.Config{Store: st, APIKey: adminKey, Logger: logger, ValidatePolicy: server.ValidatePolicy}
	if f.adminClientCA != "" {
		if f.tlsCert == "" {
			return usageError("--admin-client-ca needs TLS on the listener: pass --tls-cert and --tls-key")
		}
		pemBytes, err := os.ReadFile(f.adminClientCA)
		if err != nil {
			return usageError("--admin-client-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return usageError("--admin-client-ca %s contains no PEM certificate; pass the PEM CA certificates that issue the admin clients' certificates", f.adminClientCA)
		}
		adminCfg.ClientCAs = pool
	}
	adminCfg.TokenKeys, adminCfg.TokenRoles = tokenKeys, tokenRoles
	adminCfg.TokenIssuer, adminCfg.TokenAudience = f.adminTokenIss, f.adminTokenAud
	adminCfg.TokenMaxLifetime = f.adminTokenLife
	adminHandler, err := admin.NewHandler(adminCfg)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Store: st, SigningKey: signingKey, TokenLifetime: f.tokenLifetime, SessionTimeout: f.sessionTimeout,
		CommitDelay: serverCommitDelay(f.commitDelay), RequestTimeout: f.requestTimeout, TrustRequestID: f.trustRequestID,
		AllowEmulated: f.allowEmulated, TCBStatuses: f.tcbStatuses, MinTCBEvaluationDataNumber: f.minEvaluationNumber, MaxVMPL: maxVMPL, TrustAnchors: anchors, Collateral: collSource,
		Admin: adminHandler, PCCS: pccsHandler, ClientCAs: adminCfg.ClientCAs, Logger: logger,
		AuditCheckpointInterval: serverCheckpointInterval(f.checkpointInterval),
	})
	if err != nil {
		return err
	}

	if err := srv.Serve(ctx, ln, f.tlsCert, f.tlsKey); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// adminTokens reads the admin token keys of --admin-token-keys and the
// role rules of --admin-token-role.
func (f serveFlags) adminTokens() ([]ed25519.PublicKey, []admin.TokenRole, error) {
	if f.adminTokenKeys == "" {
		if f.adminTokenIss != "" || f.adminTokenAud != "" {
			return nil, nil, usageError("--admin-token-issuer and --admin-token-audience need --admin-token-keys, the keys that sign the tokens")
		}
		if len(f.adminTokenRole) > 0 {
			return nil, nil, usageError("--admin-token-role needs --admin-token-keys, the keys that sign the tokens")
		}
		return nil, nil, nil
	}
	pemBytes, err := os.ReadFile(f.adminTokenKeys)
	if err != nil {
		return nil, nil, usageError("--admin-token-keys: %v", err)
	}
	keys, err := admin.ParseTokenKeys(pemBytes)
	if err != nil {
		return nil, nil, usageError("--admin-token-keys %s: %v", f.adminTokenKeys, err)
	}
	var roles []admin.TokenRole
	for _, rule := range f.adminTokenRole {
		role, err := admin.ParseTokenRole(rule)
		if err != nil {
			return nil, nil, usageError("--admin-token-role: %v", err)
		}
		roles = append(roles, role)
	}
	return keys, roles, nil
}

// maxCommitDelay bounds --commit-delay, because every write of a busy
// service waits that long.
const maxCommitDelay = 100 * time.Millisecond

// serverCommitDelay maps --commit-delay to server.Config.CommitDelay, in
// which zero means the default and a negative value none.
func serverCommitDelay(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// serverCheckpointInterval returns the server.Config.AuditCheckpointInterval
// of --audit-checkpoint-interval d, in which 0 disables the lines that the
// Config disables with a negative value.
func serverCheckpointInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// warnNewSQLiteBesideKeys warns when dataDir has an EAR signing key but no
// SQLite database. The service then starts on a new, empty database, which
// is what happens when a replica is started without its --database-url.
func warnNewSQLiteBesideKeys(logger *slog.Logger, dataDir string) {
	_, dbErr := os.Stat(filepath.Join(dataDir, store.SQLiteFile))
	_, keyErr := os.Stat(filepath.Join(dataDir, ear.KeyFile))
	if errors.Is(dbErr, fs.ErrNotExist) && keyErr == nil {
		logger.Warn("the data directory has an EAR signing key but no SQLite database, so the service starts on a new, empty database; if this service used PostgreSQL, restart it with --database-url",
			"data_dir", dataDir)
	}
}
