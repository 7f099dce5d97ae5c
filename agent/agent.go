package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/resourcepath"
	"github.com/cloister-dev/cloister/ratls"
)

// SecretsDirEnv is the environment variable that contains the path of the
// workload's secret directory.
const SecretsDirEnv = "CLOISTER_SECRETS_DIR"

// SecretSource releases secrets after attestation. *kbs.Client implements
// it: its Resource runs the KBS exchange with the agent's attester.
type SecretSource interface {
	Resource(ctx context.Context, path string) ([]byte, error)
}

// Secret is one secret to fetch: a KBS resource path
// (repository/type/tag) and where the workload finds it.
type Secret struct {
	Path string
	// File is the file name in the secret directory; empty when the
	// secret goes only into Env.
	File string
	// Env is an environment variable to set to the secret; empty when
	// the secret goes only into a file.
	Env string
}

// ParseSecret parses a --secret value "PATH" or "PATH=FILE"; the file
// name defaults to the resource's tag (the last path element).
func ParseSecret(s string) (Secret, error) {
	p, file, _ := strings.Cut(s, "=")
	if err := checkResourcePath(p); err != nil {
		return Secret{}, err
	}
	if file == "" {
		file = path.Base(p)
	}
	if err := ValidSecretName(file); err != nil {
		return Secret{}, err
	}
	return Secret{Path: p, File: file}, nil
}

// ParseSecretEnv parses a --secret-env value "VAR=PATH".
func ParseSecretEnv(s string) (Secret, error) {
	name, p, ok := strings.Cut(s, "=")
	if !ok || name == "" || strings.ContainsAny(name, "=\x00") {
		return Secret{}, fmt.Errorf("invalid --secret-env %q: use VAR=repository/type/tag", s)
	}
	if err := checkResourcePath(p); err != nil {
		return Secret{}, err
	}
	return Secret{Path: p, Env: name}, nil
}

// checkResourcePath applies the key broker's rule for resource paths.
// Characters outside it could change the request URL, as '?' and '#' do,
// or name a resource that the KBS never serves.
func checkResourcePath(p string) error {
	if err := resourcepath.Check(p); err != nil {
		return fmt.Errorf("invalid secret: %w", err)
	}
	return nil
}

// reservedEnvPrefix begins the environment variables through which the
// agent passes its process ID and secret directory to the reaper, which
// removes them before it starts the workload.
const reservedEnvPrefix = "CLOISTER_AGENT_REAPER_"

// checkSecrets rejects secrets that cannot all reach the workload as
// given: an invalid resource path, file or variable name, a secret with
// neither, two secrets with one file or one variable, and a variable named
// SecretsDirEnv or starting with reservedEnvPrefix. The workload would see
// only the last value of a repeated variable, and a secret in
// SecretsDirEnv would hide the secret directory and name the directory
// that the reaper wipes.
func checkSecrets(secrets []Secret) error {
	files := map[string]string{}
	envs := map[string]string{}
	for _, s := range secrets {
		if err := checkResourcePath(s.Path); err != nil {
			return err
		}
		if s.File == "" && s.Env == "" {
			return fmt.Errorf("agent: secret %s has neither a file name nor an environment variable; give one of them", s.Path)
		}
		if s.File != "" {
			if err := ValidSecretName(s.File); err != nil {
				return err
			}
			if first, ok := files[s.File]; ok {
				return fmt.Errorf("agent: secrets %s and %s both use the file name %s; give one of them another name with PATH=FILE", first, s.Path, s.File)
			}
			files[s.File] = s.Path
		}
		if s.Env == "" {
			continue
		}
		if strings.ContainsAny(s.Env, "=\x00") {
			return fmt.Errorf("agent: invalid environment variable name %q for secret %s: it must not contain '=' or NUL", s.Env, s.Path)
		}
		if s.Env == SecretsDirEnv {
			return fmt.Errorf("agent: secret %s cannot go into %s, which names the secret directory; choose another variable", s.Path, SecretsDirEnv)
		}
		if strings.HasPrefix(s.Env, reservedEnvPrefix) {
			return fmt.Errorf("agent: secret %s cannot go into %s, because the agent reserves the variables that start with %s for its reaper; choose another variable", s.Path, s.Env, reservedEnvPrefix)
		}
		if first, ok := envs[s.Env]; ok {
			return fmt.Errorf("agent: secrets %s and %s both go into the environment variable %s, and the workload would see only the last; choose another variable for one of them", first, s.Path, s.Env)
		}
		envs[s.Env] = s.Path
	}
	return nil
}

// Config is one agent run.
type Config struct {
	// Attester produces the evidence for the KBS and for RA-TLS.
	Attester attest.Attester
	// Secrets come from Source; no Source means no secrets.
	Source  SecretSource
	Secrets []Secret
	// RetryFor is how long the agent keeps trying to fetch a secret while
	// the key broker fails transiently (kbs.IsTransient), so that the agent
	// may start before the broker. Zero fetches each secret once.
	RetryFor time.Duration
	// SecretBase is the parent of the secret directory (see NewSecretDir).
	SecretBase string
	// Listener receives RA-TLS connections; nil runs the workload without
	// a proxy.
	Listener net.Listener
	// Upstream is the workload's loopback address.
	Upstream string
	// Issue configures the RA-TLS certificates.
	Issue ratls.IssueOptions
	// RequireChallenge makes the proxy close connections that skip the
	// freshness challenge.
	RequireChallenge bool
	// Clients, when set, requires every client to present its own RA-TLS
	// certificate (role client) and verifies it (mutual mode).
	Clients *ratls.Verifier
	// RequireClientChallenge makes the proxy close connections whose
	// client does not respond to the agent's challenge with fresh
	// evidence (ratls.ProtoMutualChallenge). It needs Clients.
	RequireClientChallenge bool
	// Workload is the supervised command; its Env is extended with the
	// secrets.
	Workload Supervisor
	Log      *slog.Logger
	// Ready, when set, is called once the secrets are in place and the
	// listener serves, before the workload starts.
	Ready func(secretDir string)
}

// Run fetches the secrets, starts the RA-TLS proxy and supervises the
// workload. When the workload exits for good or ctx is cancelled, Run
// stops the proxy, wipes the secret directory and the secrets held in
// memory, and returns the workload's error. The private keys of the
// certificates and of the KBS exchange are not wiped, because Go offers
// no way to clear a crypto/ecdsa key; they end with the agent's process.
func Run(ctx context.Context, c Config) (err error) {
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	if c.Attester == nil {
		return errors.New("agent: no attester")
	}
	if c.Listener != nil {
		if err := CheckLoopback(c.Upstream); err != nil {
			return err
		}
	}
	// Checked before the secrets are fetched, because the proxy would reject
	// this configuration only after the workload has started.
	if c.RequireClientChallenge && c.Clients == nil {
		return errors.New("agent: requiring the client challenge needs a client verifier (mutual mode); pass --verify-clients with --challenge-clients")
	}

	// Checked before anything is fetched, because a clash would otherwise
	// show only after the attestation, or not at all.
	if err := checkSecrets(c.Secrets); err != nil {
		return err
	}

	env := append([]string(nil), c.Workload.Env...)
	if env == nil {
		env = os.Environ()
	}
	wiped, err := SweepSecretDirs(c.SecretBase)
	for _, path := range wiped {
		log.Warn("agent: wiped the secret directory of an agent that stopped without wiping it, such as one killed with SIGKILL", "dir", path)
	}
	if err != nil {
		log.Error("agent: wiping abandoned secret directories failed", "err", err)
	}
	dir, err := NewSecretDir(c.SecretBase)
	if err != nil {
		return err
	}
	var held [][]byte
	defer func() {
		for _, b := range held {
			zero(b)
		}
		if werr := dir.Wipe(); werr != nil {
			log.Error("agent: wiping the secret directory failed", "dir", dir.Path, "err", werr)
			err = errors.Join(err, werr)
		} else {
			log.Info("agent: secrets wiped", "dir", dir.Path)
		}
	}()
	env = append(env, SecretsDirEnv+"="+dir.Path)

	if len(c.Secrets) > 0 {
		if c.Source == nil {
			return errors.New("agent: secrets requested but no key broker configured; pass --kbs")
		}
		for _, s := range c.Secrets {
			value, err := fetchSecret(ctx, c.Source, s.Path, c.RetryFor, log)
			if err != nil {
				return fmt.Errorf("agent: fetching secret %s: %w", s.Path, err)
			}
			held = append(held, value)
			if s.File != "" {
				if _, err := dir.Write(s.File, value); err != nil {
					return err
				}
			}
			if s.Env != "" {
				// NOTE: the environment string is a copy that cannot be
				// wiped; it lives until the workload and the agent exit.
				env = append(env, s.Env+"="+string(value))
			}
			log.Info("agent: secret released", "resource", s.Path, "file", s.File, "env", s.Env, "bytes", len(value))
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	proxyErr := make(chan error, 1)
	if c.Listener != nil {
		certs, err := ratls.NewCertSource(ctx, c.Attester, c.Issue)
		if err != nil {
			return err
		}
		p := &Proxy{TLS: ratls.ServerConfig(certs, c.Clients, "http/1.1"), Attester: c.Attester,
			Upstream: c.Upstream, RequireChallenge: c.RequireChallenge,
			Clients: c.Clients, RequireClientChallenge: c.RequireClientChallenge, Log: log}
		log.Info("agent: serving RA-TLS", "listen", c.Listener.Addr().String(), "upstream", c.Upstream, "attester", c.Attester.Name())
		go func() { proxyErr <- p.Serve(ctx, c.Listener) }()
	}
	if c.Ready != nil {
		c.Ready(dir.Path)
	}

	w := c.Workload
	w.Env = env
	w.Log = log
	werr := make(chan error, 1)
	go func() { werr <- w.Run(ctx) }()
	select {
	case err = <-werr:
	case perr := <-proxyErr:
		// The proxy returns nil only after ctx is cancelled; then the
		// workload's result decides.
		if perr == nil && ctx.Err() == nil {
			perr = errors.New("agent: the RA-TLS listener stopped")
		}
		if perr != nil {
			log.Error("agent: stopping the workload because the RA-TLS listener failed", "err", perr)
		}
		cancel()
		err = errors.Join(perr, <-werr)
	}
	cancel()
	return err
}
