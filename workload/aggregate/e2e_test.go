package aggregate

import (
	"context"
	"crypto/tls"
	"errors"
	"math"
	"net/http"
	"testing"

	"github.com/cloister-dev/cloister/ratls"
)

// startRound generates n party keys, serves a workload that accepts
// exactly those parties, and returns one verified client per party and
// the verifier the parties use.
func startRound(t *testing.T, n int, cfg Config) ([]*Client, *ratls.Verifier) {
	t.Helper()
	var certs []tls.Certificate
	for range n {
		cert, id := partyCert(t)
		certs = append(certs, cert)
		cfg.Parties = append(cfg.Parties, id)
	}
	url, e := startWorkload(t, cfg)
	v := verifierFor(t, e, cfg.Digest())
	var clients []*Client
	for _, cert := range certs {
		clients = append(clients, &Client{URL: url, HTTPClient: NewHTTPClient(v, cert, true)})
	}
	return clients, v
}

func apiStatus(err error) int {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}

// Three parties contribute, the third closes the round, and every party
// reads the same mean; the next round starts empty.
func TestAggregateRoundEndToEnd(t *testing.T) {
	ctx := context.Background()
	clients, _ := startRound(t, 3, Config{Dimension: 3, MinClients: 3})

	st, err := clients[0].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Round != 1 || st.Contributors != 0 {
		t.Fatalf("status = round %d with %d contributors, want round 1 with 0", st.Round, st.Contributors)
	}

	updates := [][]float64{{1, 2, 3}, {3, 2, 1}, {2, 2, 2}}
	for i, c := range clients {
		if err := c.Submit(ctx, 1, updates[i]); err != nil {
			t.Fatalf("party %d: %v", i, err)
		}
	}
	res, err := clients[2].Close(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{2, 2, 2}
	if res.Contributors != 3 {
		t.Errorf("contributors = %d, want 3", res.Contributors)
	}
	for i := range want {
		if math.Abs(res.Mean[i]-want[i]) > 1e-12 {
			t.Errorf("mean[%d] = %v, want %v", i, res.Mean[i], want[i])
		}
	}

	again, err := clients[0].Result(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if again.Mean[0] != res.Mean[0] || again.Contributors != 3 {
		t.Errorf("round 1 read back as %+v, want %+v", again, res)
	}
	st, err = clients[1].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Round != 2 || st.Contributors != 0 {
		t.Errorf("after close: round %d with %d contributors, want round 2 with 0", st.Round, st.Contributors)
	}
}

// With fewer than MinClients contributions the close is rejected, no
// aggregate exists, and the round stays open for the missing party.
func TestAggregateTooFewClients(t *testing.T) {
	ctx := context.Background()
	clients, _ := startRound(t, 3, Config{Dimension: 2, MinClients: 3})
	for _, c := range clients[:2] {
		if err := c.Submit(ctx, 1, []float64{1, 1}); err != nil {
			t.Fatal(err)
		}
	}

	_, err := clients[0].Close(ctx, 1)
	if apiStatus(err) != http.StatusConflict {
		t.Fatalf("close with 2 of 3 parties: %v, want 409", err)
	}
	t.Logf("rejection: %v", err)
	if _, err := clients[0].Result(ctx, 1); apiStatus(err) != http.StatusNotFound {
		t.Errorf("aggregate of the open round: %v, want 404", err)
	}

	if err := clients[2].Submit(ctx, 1, []float64{4, 4}); err != nil {
		t.Fatal(err)
	}
	res, err := clients[0].Close(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mean[0] != 2 {
		t.Errorf("mean[0] = %v, want 2", res.Mean[0])
	}
}

// A second submission by the same party in one round is rejected and
// does not change the sum.
func TestAggregateDuplicateSubmission(t *testing.T) {
	ctx := context.Background()
	clients, _ := startRound(t, 2, Config{Dimension: 1, MinClients: 2})
	if err := clients[0].Submit(ctx, 1, []float64{10}); err != nil {
		t.Fatal(err)
	}
	err := clients[0].Submit(ctx, 1, []float64{1000})
	if apiStatus(err) != http.StatusConflict {
		t.Fatalf("duplicate submission: %v, want 409", err)
	}
	t.Logf("rejection: %v", err)

	// The duplicate does not count towards the threshold either.
	if _, err := clients[0].Close(ctx, 1); apiStatus(err) != http.StatusConflict {
		t.Fatalf("close with one party: %v, want 409", err)
	}
	if err := clients[1].Submit(ctx, 1, []float64{20}); err != nil {
		t.Fatal(err)
	}
	res, err := clients[1].Close(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mean[0] != 15 {
		t.Errorf("mean = %v, want 15 (the duplicate must not be added)", res.Mean[0])
	}
}

// Requests for a closed or future round, and from a party outside the
// configuration, are rejected.
func TestAggregateRejectsWrongRoundAndStranger(t *testing.T) {
	ctx := context.Background()
	clients, v := startRound(t, 2, Config{Dimension: 1, MinClients: 2})
	if err := clients[0].Submit(ctx, 2, []float64{1}); apiStatus(err) != http.StatusConflict {
		t.Errorf("submission to a future round: %v, want 409", err)
	}
	if err := clients[0].Submit(ctx, 1, []float64{1, 2}); apiStatus(err) != http.StatusBadRequest {
		t.Errorf("submission of the wrong dimension: %v, want 400", err)
	}

	cert, _ := partyCert(t)
	stranger := &Client{URL: clients[0].URL, HTTPClient: NewHTTPClient(v, cert, true)}
	if err := stranger.Submit(ctx, 1, []float64{1}); apiStatus(err) != http.StatusForbidden {
		t.Errorf("submission by an unlisted party: %v, want 403", err)
	}
	if _, err := stranger.Status(ctx); err != nil {
		t.Errorf("status for an unlisted party: %v", err)
	}
}

// A party that expects another configuration digest rejects the
// workload before sending its update.
func TestAggregateClientRejectsOtherConfig(t *testing.T) {
	ctx := context.Background()
	cert, id := partyCert(t)
	other, _ := partyCert(t)
	cfg := Config{Dimension: 1, MinClients: 2, Parties: []string{id, SPKIHash(other.Leaf.RawSubjectPublicKeyInfo)}}
	url, e := startWorkload(t, cfg)

	lowered := cfg
	lowered.MinClients = 3
	lowered.Parties = append(lowered.Parties, SPKIHash([]byte("third")))
	c := &Client{URL: url, HTTPClient: NewHTTPClient(verifierFor(t, e, lowered.Digest()), cert, true)}
	err := c.Submit(ctx, 1, []float64{1})
	if err == nil {
		t.Fatal("the update reached a workload with another configuration")
	}
	t.Logf("rejection: %v", err)
}

// The workload refuses to start when HOST_DATA does not carry its
// configuration digest.
func TestCheckHostDataMismatch(t *testing.T) {
	cfg := Config{Dimension: 4, MinClients: 2}
	e := emulatorFor(t, cfg.Digest())
	other := cfg
	other.ClipNorm = 1
	if err := CheckHostData(context.Background(), e, other.Digest()); err == nil {
		t.Fatal("a configuration other than HOST_DATA's was accepted")
	}
}
