package quickstart

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/server"
	"github.com/cloister-dev/cloister/store"
)

// service is an attestation service (cloister serve) started for the
// walkthrough: embedded SQLite in a temporary data directory, on
// 127.0.0.1 with a random port, accepting emulated TEEs whose
// development root is in anchors.
type service struct {
	URL     string
	Dir     string
	Admin   *admin.Client
	anchors *collateral.Set
	store   store.Store
	cancel  context.CancelFunc
	done    chan error
}

// startService opens the store and serves the KBS protocol and the admin
// API. Its master key and admin key are random and live only in memory.
func startService(ctx context.Context, log *slog.Logger) (_ *service, err error) {
	dir, err := os.MkdirTemp("", "cloister-quickstart-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()

	raw := make([]byte, store.MasterKeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	masterKey, err := store.NewMasterKey(raw)
	clear(raw)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, store.Config{DataDir: dir, MasterKey: masterKey, Logger: log})
	if err != nil {
		return nil, err
	}
	s := &service{Dir: dir, anchors: &collateral.Set{}, store: st}
	if err := s.serve(log); err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

func (s *service) serve(log *slog.Logger) error {
	signingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	apiKey := make([]byte, 32)
	if _, err := rand.Read(apiKey); err != nil {
		return err
	}
	adminKey := hex.EncodeToString(apiKey)
	handler, err := admin.NewHandler(admin.Config{Store: s.store, APIKey: adminKey, Logger: log, ValidatePolicy: server.ValidatePolicy})
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Store: s.store, SigningKey: signingKey, AllowEmulated: true,
		TrustAnchors: s.anchors, Collateral: &collateral.Set{}, Admin: handler, Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.URL = "http://" + ln.Addr().String()
	s.Admin = &admin.Client{BaseURL: s.URL, APIKey: adminKey, HTTPClient: &http.Client{Timeout: 30 * time.Second}}

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- srv.Serve(ctx, ln, "", "") }()
	return nil
}

// stop shuts the service down, closes the store and removes the data
// directory.
func (s *service) stop() error {
	s.cancel()
	err := <-s.done
	return errors.Join(err, s.store.Close(), os.RemoveAll(s.Dir))
}
