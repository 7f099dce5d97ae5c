package aggregate

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// Errors of Aggregator. Each is wrapped with the values involved.
var (
	ErrWrongRound     = errors.New("round is not open")
	ErrDuplicate      = errors.New("party already submitted an update in this round")
	ErrTooFewClients  = errors.New("too few parties contributed to the round")
	ErrInvalidUpdate  = errors.New("invalid update")
	ErrUnknownParty   = errors.New("party is not in the manifest")
	ErrRoundNotClosed = errors.New("round has no released aggregate")
)

// maxRetainedRounds is how many closed rounds' means Result still returns
// at most, and maxRetainedBytes bounds the memory those means take. At
// MaxDimension a mean takes 32 MiB, so only the last 8 rounds are retained.
const (
	maxRetainedRounds = 64
	maxRetainedBytes  = 256 << 20
)

// retainedRounds returns how many closed rounds' means an aggregator of
// updates of length dimension retains. That is maxRetainedRounds, or fewer
// when their means would take more than maxRetainedBytes, but at least one.
func retainedRounds(dimension int) uint64 {
	perMean := 8 * max(dimension, 1)
	return uint64(min(maxRetainedRounds, max(1, maxRetainedBytes/perMean)))
}

// Result is the released aggregate of a closed round.
type Result struct {
	Round        uint64    `json:"round"`
	Contributors int       `json:"contributors"`
	Mean         []float64 `json:"mean"`
}

// Aggregator holds the open round's running sum and the means of closed
// rounds. It keeps no update after Submit returns. Parties are named by
// their manifest names. It is safe for concurrent use.
//
// NOTE: all state is in memory, so a restarted workload starts again at
// round 1 and the open round's contributions are lost.
type Aggregator struct {
	m       *Manifest
	parties map[string]bool

	mu      sync.Mutex
	round   uint64
	sum     []float64
	seen    map[string]bool
	results map[uint64]*Result
}

// New returns an Aggregator for m with round 1 open.
func New(m *Manifest) (*Aggregator, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	a := &Aggregator{m: m, round: 1, sum: make([]float64, m.Dimension),
		parties: map[string]bool{}, seen: map[string]bool{}, results: map[uint64]*Result{}}
	for _, p := range m.Parties {
		a.parties[p.Name] = true
	}
	return a, nil
}

// Manifest returns the manifest the aggregator enforces.
func (a *Aggregator) Manifest() *Manifest { return a.m }

// Status returns the open round's number and its number of contributors.
func (a *Aggregator) Status() (round uint64, contributors int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.round, len(a.seen)
}

// Submit adds party's update to round, which must be the open round. The
// update is clipped, added to the sum and then overwritten with zeros,
// also when it is rejected, so the caller must not reuse it.
func (a *Aggregator) Submit(round uint64, party string, update []float64) error {
	_, err := a.submit(round, party, update)
	return err
}

// submit is Submit, and also returns the round's number of contributors
// right after this update counted, read under the same lock, so that a
// Close that follows at once cannot make it report the next round's count.
func (a *Aggregator) submit(round uint64, party string, update []float64) (contributors int, err error) {
	defer clear(update)

	if !a.parties[party] {
		return 0, fmt.Errorf("%w: %s", ErrUnknownParty, party)
	}
	if len(update) != a.m.Dimension {
		return 0, fmt.Errorf("%w: length %d, the manifest's dimension is %d", ErrInvalidUpdate, len(update), a.m.Dimension)
	}
	norm, err := l2Norm(update)
	if err != nil {
		return 0, err
	}
	scale := 1.0
	if a.m.ClipNorm > 0 && norm > a.m.ClipNorm {
		scale = a.m.ClipNorm / norm
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if round != a.round {
		return 0, fmt.Errorf("%w: round %d was requested, the open round is %d", ErrWrongRound, round, a.round)
	}
	if a.seen[party] {
		return 0, fmt.Errorf("%w: party %s, round %d", ErrDuplicate, party, round)
	}
	for i, x := range update {
		a.sum[i] += x * scale
	}
	a.seen[party] = true
	return len(a.seen), nil
}

// l2Norm returns the Euclidean norm of v, rejecting NaN and infinite
// elements and a norm that overflows.
func l2Norm(v []float64) (float64, error) {
	var ss float64
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, fmt.Errorf("%w: element %d is %v: every element must be finite", ErrInvalidUpdate, i, x)
		}
		ss += x * x
	}
	if math.IsInf(ss, 0) {
		return 0, fmt.Errorf("%w: the L2 norm overflows float64: scale the update down", ErrInvalidUpdate)
	}
	return math.Sqrt(ss), nil
}

// Close closes round, which must be the open round, and returns its mean.
// With fewer than MinClients contributors it returns ErrTooFewClients
// and the round stays open. On success the sum is zeroed and the next
// round opens.
func (a *Aggregator) Close(round uint64) (*Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if round != a.round {
		return nil, fmt.Errorf("%w: round %d was requested, the open round is %d", ErrWrongRound, round, a.round)
	}
	n := len(a.seen)
	if n < a.m.MinClients {
		return nil, fmt.Errorf("%w: round %d has %d of the %d contributors it needs", ErrTooFewClients, round, n, a.m.MinClients)
	}

	mean := make([]float64, len(a.sum))
	for i, s := range a.sum {
		mean[i] = s / float64(n)
	}
	clear(a.sum)
	clear(a.seen)
	res := &Result{Round: round, Contributors: n, Mean: mean}
	a.results[round] = res
	delete(a.results, round-retainedRounds(a.m.Dimension))
	a.round++
	return res, nil
}

// Result returns the released aggregate of a closed round, one of the
// last rounds that retainedRounds allows for the manifest's dimension.
func (a *Aggregator) Result(round uint64) (*Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	res, ok := a.results[round]
	if !ok {
		return nil, fmt.Errorf("%w: round %d (the open round is %d)", ErrRoundNotClosed, round, a.round)
	}
	return res, nil
}
