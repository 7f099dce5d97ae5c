package kbs

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/store"
)

// countingStore counts the transactions run through it; its other methods
// are not used.
type countingStore struct {
	store.Store
	mu           sync.Mutex
	transactions int
}

func (s *countingStore) Tx(ctx context.Context, fn func(tx store.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transactions++
	// The writes of these tests ignore tx, so a nil one is enough.
	return fn(nil)
}

func TestBatchWaitsForSiblings(t *testing.T) {
	const writers = 6
	st := &countingStore{}
	release := make(chan struct{})
	var slept []time.Duration
	b := &txBatcher{sleep: func(d time.Duration) {
		slept = append(slept, d)
		<-release
	}}
	b.active.Store(writers + commitSiblings)

	var wg sync.WaitGroup
	var mu sync.Mutex
	ran := 0
	for range writers {
		wg.Go(func() {
			err := b.do(st, time.Millisecond, nil, func(ctx context.Context, tx store.Tx) error {
				mu.Lock()
				ran++
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	// The first batch waits in sleep until every writer has queued. A
	// batcher that does not wait never has them all queued.
	for deadline := time.Now().Add(10 * time.Second); ; {
		b.mu.Lock()
		n := len(b.pending)
		b.mu.Unlock()
		if n == writers {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			wg.Wait()
			t.Fatalf("only %d of %d writes queued behind the waiting batch", n, writers)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()

	if ran != writers {
		t.Errorf("%d writes ran, want %d", ran, writers)
	}
	if st.transactions != 1 {
		t.Errorf("%d transactions, want one for all %d writes", st.transactions, writers)
	}
	if len(slept) == 0 || slept[0] != time.Millisecond {
		t.Errorf("slept %v, want the commit delay of 1ms first", slept)
	}
}

func TestBatchCommitsAtOnce(t *testing.T) {
	tests := []struct {
		name   string
		active int64
		delay  time.Duration
	}{
		{"lone request", 1, time.Millisecond},
		{"fewer siblings than the threshold", commitSiblings, time.Millisecond},
		{"no delay", 100, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slept := false
			b := &txBatcher{sleep: func(time.Duration) { slept = true }}
			b.active.Store(tt.active)
			err := b.do(&countingStore{}, tt.delay, nil, func(ctx context.Context, tx store.Tx) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if slept {
				t.Error("the batch waited for the commit delay")
			}
		})
	}
}

// recordingObserver keeps the batches reported to it.
type recordingObserver struct {
	mu      sync.Mutex
	batches []observedBatch
}

type observedBatch struct {
	writes    int
	committed bool
}

func (o *recordingObserver) Commit(writes int, d time.Duration, committed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.batches = append(o.batches, observedBatch{writes, committed})
}

// A batch that fails is reported as rolled back, and each of its writes,
// run again on its own, as a batch of one.
func TestBatchReportsCommits(t *testing.T) {
	errConflict := errors.New("conflict")
	writes := []func(ctx context.Context, tx store.Tx) error{
		func(context.Context, store.Tx) error { return nil },
		func(context.Context, store.Tx) error { return errConflict },
		func(context.Context, store.Tx) error { return nil },
	}
	items := make([]*txItem, len(writes))
	for i, fn := range writes {
		items[i] = &txItem{fn: fn, done: make(chan error, 1)}
	}
	obs := &recordingObserver{}
	commitBatch(&countingStore{}, items, obs)

	for i, it := range items {
		err := <-it.done
		if want := writes[i](nil, nil); !errors.Is(err, want) {
			t.Errorf("write %d: err = %v, want %v", i, err, want)
		}
	}
	want := []observedBatch{{3, false}, {1, true}, {1, false}, {1, true}}
	if !slices.Equal(obs.batches, want) {
		t.Errorf("reported batches %v, want %v", obs.batches, want)
	}
}
