package collateral

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"
)

// memoryBackend is a Backend in a map, so that a test can store entries
// with any metadata.
type memoryBackend map[string]*Entry

func (m memoryBackend) Get(_ context.Context, key string) (*Entry, error) {
	e, ok := m[key]
	if !ok {
		return nil, nil
	}
	copied := *e
	return &copied, nil
}

func (m memoryBackend) Put(_ context.Context, e *Entry) error {
	copied := *e
	m[e.Key] = &copied
	return nil
}

func (m memoryBackend) List(context.Context) ([]*Entry, error) {
	var out []*Entry
	for _, e := range m {
		out = append(out, e)
	}
	return out, nil
}

// testCRL returns a DER CRL signed by a test root, valid from thisUpdate to
// nextUpdate.
func testCRL(t *testing.T, thisUpdate, nextUpdate time.Time) []byte {
	t.Helper()
	cert, _, key := testCert(t)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
	}, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCacheRechecksCachedEntries(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	expiredCRL := testCRL(t, now.Add(-48*time.Hour), now.Add(-time.Hour))
	currentCRL := testCRL(t, now.Add(-time.Hour), now.Add(30*24*time.Hour))
	tests := []struct {
		name   string
		cached Entry
	}{
		{"fetch time in the future", Entry{Body: currentCRL, FetchedAt: now.Add(365 * 24 * time.Hour)}},
		{"stored next update missing, body expired", Entry{Body: expiredCRL, FetchedAt: now.Add(-time.Minute)}},
		{"stored next update later than the body's", Entry{Body: expiredCRL, FetchedAt: now.Add(-time.Minute),
			NextUpdate: now.Add(365 * 24 * time.Hour)}},
		{"body no longer collateral", Entry{Body: []byte("truncated"), FetchedAt: now.Add(-time.Minute)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := memoryBackend{}
			cached := tt.cached
			cached.Key, cached.URL = "pcs/pckcrl/processor", "https://pcs.example.test/pckcrl"
			backend["pcs/pckcrl/processor"] = &cached
			c := &Cache{Backend: backend, Now: func() time.Time { return now }}

			fetches := 0
			fetch := func(context.Context) (*Entry, error) {
				fetches++
				return &Entry{URL: "https://pcs.example.test/pckcrl", Body: currentCRL, NextUpdate: now.Add(30 * 24 * time.Hour)}, nil
			}
			got, err := c.Get(context.Background(), "pcs/pckcrl/processor", now, fetch)
			if err != nil {
				t.Fatal(err)
			}
			if fetches != 1 {
				t.Errorf("fetches = %d, want 1: the cached entry was served", fetches)
			}
			if string(got.Body) != string(currentCRL) {
				t.Error("Get returned the cached body, want the fetched one")
			}
		})
	}
}

func TestCacheStaleEntryNotServedInGrace(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	backend := memoryBackend{"k": {Key: "k", URL: "https://pcs.example.test/pckcrl",
		Body: testCRL(t, now.Add(-48*time.Hour), now.Add(-time.Hour)), FetchedAt: now.Add(-2 * time.Hour)}}
	c := &Cache{Backend: backend, Now: func() time.Time { return now }, MaxAge: time.Hour, Grace: 24 * time.Hour}
	down := func(context.Context) (*Entry, error) {
		return nil, &UpstreamError{URL: "https://pcs.example.test/pckcrl", Status: 503, Err: errors.New("down")}
	}
	if _, err := c.Get(context.Background(), "k", now, down); err == nil {
		t.Error("a CRL past its nextUpdate was served while the upstream was down")
	}
}

func TestCacheSharedFetchContexts(t *testing.T) {
	body := testCRL(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	c := &Cache{Backend: memoryBackend{}}
	release := make(chan struct{})
	started := make(chan struct{})
	fetch := func(ctx context.Context) (*Entry, error) {
		close(started)
		select {
		case <-release:
			return &Entry{URL: "https://pcs.example.test/pckcrl", Body: body}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	// The first caller starts the fetch and then gives up.
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() {
		_, err := c.Get(firstCtx, "k", time.Now(), fetch)
		firstDone <- err
	}()
	<-started

	// A caller with a short deadline returns at its deadline, not when the
	// shared fetch ends.
	shortCtx, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	begin := time.Now()
	_, err := c.Get(shortCtx, "k", time.Now(), fetch)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("short-deadline caller: err = %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(begin); waited > 2*time.Second {
		t.Errorf("short-deadline caller waited %s for another caller's fetch", waited)
	}

	// A third caller joins, the first cancels, and the fetch still serves
	// the third.
	thirdDone := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), "k", time.Now(), fetch)
		thirdDone <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancelFirst()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: err = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-thirdDone; err != nil {
		t.Errorf("third caller failed because the first caller gave up: %v", err)
	}
}
