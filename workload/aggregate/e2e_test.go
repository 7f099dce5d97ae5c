package aggregate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net/http"
	"testing"

	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// startFederation generates n party keys, serves a workload whose
// manifest lists them, and returns one verified client per party.
func startFederation(t *testing.T, n int, m Manifest) ([]*Client, *deployment) {
	t.Helper()
	var certs []tls.Certificate
	for i := range n {
		cert, p := workloadtest.NewParty(t, fmt.Sprintf("hospital-%d", i))
		certs = append(certs, cert)
		m.Parties = append(m.Parties, p)
	}
	d := startWorkload(t, encodeManifest(t, m))
	var clients []*Client
	for _, cert := range certs {
		clients = append(clients, d.client(t, cert, d.manifest))
	}
	return clients, d
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
	clients, d := startFederation(t, 3, Manifest{Name: "fl", Dimension: 3, MinClients: 3})

	st, err := clients[0].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Round != 1 || st.Contributors != 0 {
		t.Fatalf("status = round %d with %d contributors, want round 1 with 0", st.Round, st.Contributors)
	}
	if st.Manifest != d.manifest {
		t.Errorf("status names manifest %s, want %s", st.Manifest, d.manifest)
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
	clients, _ := startFederation(t, 3, Manifest{Name: "fl", Dimension: 2, MinClients: 3})
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
	clients, _ := startFederation(t, 2, Manifest{Name: "fl", Dimension: 1, MinClients: 2})
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

// Requests for another round or of another dimension are rejected, and
// a key outside the manifest fails the handshake.
func TestAggregateRejectsWrongRoundAndStranger(t *testing.T) {
	ctx := context.Background()
	clients, d := startFederation(t, 2, Manifest{Name: "fl", Dimension: 1, MinClients: 2})
	if err := clients[0].Submit(ctx, 2, []float64{1}); apiStatus(err) != http.StatusConflict {
		t.Errorf("submission to a future round: %v, want 409", err)
	}
	if err := clients[0].Submit(ctx, 1, []float64{1, 2}); apiStatus(err) != http.StatusBadRequest {
		t.Errorf("submission of the wrong dimension: %v, want 400", err)
	}

	cert, _ := workloadtest.NewParty(t, "stranger")
	err := d.client(t, cert, d.manifest).Submit(ctx, 1, []float64{1})
	if err == nil {
		t.Fatal("a key outside the manifest submitted an update")
	}
	t.Logf("rejection: %v", err)
}

// A party that agreed to another manifest (here one with a higher
// threshold) rejects the workload before sending its update.
func TestAggregateClientRejectsOtherManifest(t *testing.T) {
	ctx := context.Background()
	certA, a := workloadtest.NewParty(t, "a")
	_, b := workloadtest.NewParty(t, "b")
	_, c := workloadtest.NewParty(t, "c")
	d := startWorkload(t, encodeManifest(t, Manifest{Name: "fl", Dimension: 1, MinClients: 2, Parties: []Party{a, b, c}}))

	agreed := encodeManifest(t, Manifest{Name: "fl", Dimension: 1, MinClients: 3, Parties: []Party{a, b, c}})
	_, agreedDigest, err := ParseManifest(agreed)
	if err != nil {
		t.Fatal(err)
	}
	err = d.client(t, certA, agreedDigest).Submit(ctx, 1, []float64{1})
	if err == nil {
		t.Fatal("the update reached a workload with another manifest")
	}
	t.Logf("rejection: %v", err)
}
