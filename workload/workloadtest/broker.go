package workloadtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/server"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/tee/nvgpu"
	"github.com/cloister-dev/cloister/tee/snp"
	"github.com/cloister-dev/cloister/workload"
)

// AdminKey is the admin API key of every broker StartBroker runs.
const AdminKey = "workloadtest-admin-key-0123456789"

// Broker is Cloister's attestation service and key broker (the server
// package behind cloister serve) on loopback, with an SQLite store in a
// temporary directory and an admin client for it.
type Broker struct {
	URL   string
	Admin *admin.Client
}

// StartBroker runs the attestation service and key broker until the test
// ends. It trusts the
// development roots of the emulated TEEs and accepts their launch
// measurements as reference values. An attestation of any of them then
// passes the appraisal unless another rule such as debug fails, so the
// resource policy decides each release.
func StartBroker(t testing.TB, emulators ...*snp.Emulator) *Broker {
	t.Helper()
	return startBroker(t, nil, emulators)
}

// StartGPUBroker is StartBroker that also trusts the development roots of
// the emulated GPUs gpus and has their RIMs as nvidia-gpu collateral. The
// service's default nvidia-gpu attestation policy then affirms the GPUs,
// with their rim check passed.
func StartGPUBroker(t testing.TB, gpus *nvgpu.Emulator, emulators ...*snp.Emulator) *Broker {
	t.Helper()
	return startBroker(t, gpus, emulators)
}

func startBroker(t testing.TB, gpus *nvgpu.Emulator, emulators []*snp.Emulator) *Broker {
	t.Helper()
	ctx := context.Background()
	mk := make([]byte, store.MasterKeySize)
	rand.Read(mk)
	masterKey, err := store.NewMasterKey(mk)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir(), MasterKey: masterKey, Logger: QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	anchors := &collateral.Set{}
	for _, e := range emulators {
		anchors.Merge(workload.RootSet(e))
	}
	var rims collateral.Source
	if gpus != nil {
		anchors.Merge(gpuRoots(gpus))
		set, err := gpus.Collateral()
		if err != nil {
			t.Fatal(err)
		}
		set.ScopeTo([]string{string(attest.TEENVGPU)})
		rims = set
	}
	adminHandler, err := admin.NewHandler(admin.Config{Store: st, APIKey: AdminKey,
		ValidatePolicy: server.ValidatePolicy, Logger: QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	signingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, SigningKey: signingKey, AllowEmulated: true,
		TrustAnchors: anchors, Collateral: rims, Admin: adminHandler, Logger: QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	b := &Broker{URL: ts.URL, Admin: &admin.Client{BaseURL: ts.URL, APIKey: AdminKey}}
	for _, e := range emulators {
		ev, err := e.Attest(ctx, make([]byte, 64))
		if err != nil {
			t.Fatal(err)
		}
		report, err := snp.ParseReport(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		rv := store.ReferenceValue{Name: "snp.measurement", Value: hex.EncodeToString(report.Measurement[:])}
		if _, err := b.Admin.AddReferenceValue(ctx, rv); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// gpuRoots returns the development roots of the emulated GPUs as trust
// anchors for nvidia-gpu evidence only.
func gpuRoots(gpus *nvgpu.Emulator) *collateral.Set {
	s := &collateral.Set{}
	for _, root := range gpus.Roots() {
		s.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "emulated NVIDIA GPU development root", Raw: root.Raw, Certificate: root})
	}
	s.ScopeTo([]string{string(attest.TEENVGPU)})
	return s
}

// TEEClient returns a key broker client that attests with tee and sends
// the evidence of its GPUs beside it, as the workloads' serve commands
// do.
func (b *Broker) TEEClient(t testing.TB, tee *workload.TEE) *kbs.Client {
	t.Helper()
	c := b.KBSClient(t, tee.Attester)
	c.Devices = tee.Devices()
	return c
}

// KBSClient returns a key broker client that attests with attester.
func (b *Broker) KBSClient(t testing.TB, attester attest.Attester) *kbs.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &kbs.Client{URL: b.URL, Attester: attester, HTTPClient: &http.Client{Jar: jar}}
}
