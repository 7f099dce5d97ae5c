package custody

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/server"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/workload"
)

const testAdminKey = "custody-test-admin-key-0123456789"

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// broker is `cloister serve` on loopback with an SQLite store in a
// temporary directory, and an admin client for it.
type broker struct {
	url   string
	admin *admin.Client
}

// startBroker runs the attestation service and key broker, trusting the
// development roots of tees and accepting their measurements as
// reference values, so that an attestation of any of them is affirming
// and only the resource policy decides a release.
func startBroker(t testing.TB, tees ...*workload.TEE) *broker {
	t.Helper()
	ctx := context.Background()
	mk := make([]byte, store.MasterKeySize)
	rand.Read(mk)
	masterKey, err := store.NewMasterKey(mk)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir(), MasterKey: masterKey, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	anchors := &collateral.Set{}
	for _, tee := range tees {
		anchors.Merge(tee.TrustAnchors())
	}
	adminHandler, err := admin.NewHandler(admin.Config{Store: st, APIKey: testAdminKey,
		ValidatePolicy: server.ValidatePolicy, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	signingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, SigningKey: signingKey, AllowEmulated: true,
		TrustAnchors: anchors, Admin: adminHandler, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	b := &broker{url: ts.URL, admin: &admin.Client{BaseURL: ts.URL, APIKey: testAdminKey}}
	for _, tee := range tees {
		rv := store.ReferenceValue{Name: "snp.measurement", Value: hex.EncodeToString(tee.Claims.Measurement)}
		if _, err := b.admin.AddReferenceValue(ctx, rv); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// kbsClient returns a key broker client that attests with tee.
func (b *broker) kbsClient(t testing.TB, tee *workload.TEE) *kbs.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &kbs.Client{URL: b.url, Attester: tee.Attester, HTTPClient: &http.Client{Jar: jar}}
}
