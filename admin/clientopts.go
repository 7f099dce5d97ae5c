package admin

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/store"
)

// DefaultServer is the service address the command-line client uses when
// none is given: the default listen address of cloister serve.
const DefaultServer = "http://127.0.0.1:8080"

// ServerEnv names the environment variable with the service URL that the
// command-line client uses when none is given.
const ServerEnv = "CLOISTER_SERVER"

// ClientOptions are the connection settings of a command-line client. The
// zero value connects to $CLOISTER_SERVER, else DefaultServer, with the
// key from CLOISTER_ADMIN_KEY or from the admin key file in the default
// data directory.
type ClientOptions struct {
	Server  string // service URL; empty means $CLOISTER_SERVER, else DefaultServer
	KeyFile string // admin key file; empty means CLOISTER_ADMIN_KEY or <default data dir>/admin.key

	CAFile   string // PEM CA certificates that verify an https server; empty means the system roots
	CertFile string // PEM client certificate for mutual TLS
	CertKey  string // PEM private key of CertFile

	Timeout time.Duration // per request; 0 means 30 seconds
}

// NewClient builds a Client from o. It refuses to send the bearer key over
// plain HTTP to anything but a loopback address, where it could be read on
// the network.
func (o ClientOptions) NewClient() (*Client, error) {
	server, source := o.Server, "--server"
	if server == "" {
		server, source = os.Getenv(ServerEnv), "$"+ServerEnv
	}
	if server == "" {
		server = DefaultServer
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q in %s: use http://host:port or https://host:port", server, source)
	}

	tlsConfig, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	hasCert := len(tlsConfig.Certificates) > 0

	key, err := o.apiKey(hasCert)
	if err != nil {
		return nil, err
	}
	if key != "" && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("server %s in %s uses plain HTTP on a non-loopback host, which would expose the admin key; use https", server, source)
	}

	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	return &Client{BaseURL: server, APIKey: key, HTTPClient: &http.Client{Transport: transport, Timeout: timeout}}, nil
}

func (o ClientOptions) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s contains no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.CertKey == "") {
		return nil, errors.New("a client certificate needs both the certificate file and its key file")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.CertKey)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// apiKey finds the bearer key. A missing key is an error unless a client
// certificate authenticates instead.
func (o ClientOptions) apiKey(hasCert bool) (string, error) {
	if o.KeyFile != "" {
		key, err := ReadKeyFile(o.KeyFile)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("admin key file %s not found; pass the admin.key in the service's --data-dir (such as state/admin.key), or set %s", o.KeyFile, KeyEnv)
		}
		return key, err
	}
	if key := os.Getenv(KeyEnv); key != "" {
		return key, nil
	}
	dir, err := store.DefaultDataDir()
	if err != nil {
		return "", err
	}
	key, err := ReadKeyFile(DefaultKeyPath(dir))
	if err == nil || hasCert {
		return key, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no admin key: %s does not exist; pass --admin-key-file, set %s, or use a client certificate", DefaultKeyPath(dir), KeyEnv)
	}
	return "", err
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
