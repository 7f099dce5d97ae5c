package token

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

var tokenTEEs = []string{"gcp-token", "maa-token", "ita-token"}

// TestCorpusVerdicts verifies every token case of the evidence corpus under
// the default appraisal and compares verdict, reason and claims with the
// case's expect.json.
func TestCorpusVerdicts(t *testing.T) {
	for _, tee := range tokenTEEs {
		for _, c := range corpus.Cases(t, tee) {
			t.Run(c.Name, func(t *testing.T) {
				ev := attest.Evidence{Data: c.EvidenceBytes(t)}
				res := corpus.CheckVerdicts(t, c, ev, c.Options(t))
				if res.Format != tee {
					t.Fatalf("detected as %q (%v), want %s", res.Format, res.Error, tee)
				}
				if corpus.CheckUnverified(t, c, res) {
					return
				}
				checkClaims(t, c, res.Claims)
			})
		}
	}
}

func checkClaims(t *testing.T, c corpus.Case, got *attest.Claims) {
	t.Helper()
	corpus.CheckClaims(t, c, got)
	if c.Expect.Nonce == nil && len(got.Nonce) != 0 {
		t.Errorf("nonce %s reported for a token without one", got.Nonce)
	}
	corpus.CheckTCB(t, c, got)

	wantKind := attest.AnchorCallerKey
	if len(c.Expect.Roots) > 0 {
		wantKind = attest.AnchorCallerRoot
	}
	if got.TrustAnchor.Kind != wantKind {
		t.Errorf("trust anchor kind %s, want %s", got.TrustAnchor.Kind, wantKind)
	}
	if got.TrustAnchor.TestKey {
		t.Errorf("service key %s marked as a published test key", got.TrustAnchor.Name)
	}
}

// TestCorpusOutOfDateAccepted accepts the Intel Trust Authority case when
// the policy admits its TCB status, which shows that the status is its only
// reason for rejection.
func TestCorpusOutOfDateAccepted(t *testing.T) {
	for _, c := range corpus.Cases(t, "ita-token") {
		if c.Negative() || c.Expect.TCBStatus == "" {
			continue
		}
		opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
		res := appraise.Evaluate(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, opts,
			appraise.Options{TCBStatuses: []string{c.Expect.TCBStatus}})
		if res.Verdict != appraise.Accept {
			t.Errorf("%s: verdict %s (%v) with %s accepted, want accept", c.Name, res.Verdict, res.Error, c.Expect.TCBStatus)
		}
	}
}

// TestCorpusNonce passes each verified case's nonce as the expected nonce,
// then changed ones, which must be binding errors.
func TestCorpusNonce(t *testing.T) {
	for _, tee := range tokenTEEs {
		for _, c := range corpus.Cases(t, tee) {
			if c.Negative() || c.Expect.Nonce == nil {
				continue
			}
			t.Run(c.Name, func(t *testing.T) {
				corpus.CheckNonceBinding(t, c, attest.Evidence{Data: c.EvidenceBytes(t)})
			})
		}
	}
}

// TestCorpusTimes verifies each verified case just before its expiry, at
// its expiry and before its not-before time.
func TestCorpusTimes(t *testing.T) {
	for _, tee := range tokenTEEs {
		for _, c := range corpus.Cases(t, tee) {
			if c.Negative() {
				continue
			}
			t.Run(c.Name, func(t *testing.T) {
				ev := attest.Evidence{Data: c.EvidenceBytes(t)}
				opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
				claims, err := attest.Verify(context.Background(), ev, opts)
				if claims == nil {
					t.Fatalf("not verified: %v", err)
				}
				exp, _ := time.Parse(time.RFC3339, claims.Attributes["expires_at"].(string))
				nbf, _ := time.Parse(time.RFC3339, claims.Attributes["not_before"].(string))

				opts.At = exp
				_, err = attest.Verify(context.Background(), ev, opts)
				if !errors.Is(err, attest.ErrExpired) || !corpus.MatchesReason(err.Error(), "expired") {
					t.Errorf("at expiry: error %v, want expired", err)
				}
				opts.At = exp.Add(-time.Second)
				if _, err := attest.Verify(context.Background(), ev, opts); errors.Is(err, attest.ErrExpired) {
					t.Errorf("one second before expiry: %v", err)
				}
				opts.At = nbf.Add(-time.Second)
				if _, err := attest.Verify(context.Background(), ev, opts); !errors.Is(err, attest.ErrExpired) {
					t.Errorf("before not-before: error %v, want not yet valid", err)
				}
			})
		}
	}
}

// TestCorpusNoTrustAnchor verifies each case without collateral: the
// missing JWKS or root must be named.
func TestCorpusNoTrustAnchor(t *testing.T) {
	for _, tee := range tokenTEEs {
		for _, c := range corpus.Cases(t, tee) {
			_, err := attest.Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, attest.Options{At: c.Time(t)})
			if !errors.Is(err, attest.ErrCollateralMissing) {
				t.Errorf("%s: error %v, want collateral missing", c.Name, err)
			}
		}
	}
}

// TestCorpusPrefixes verifies every prefix of each case: all must be
// rejected without a panic.
func TestCorpusPrefixes(t *testing.T) {
	for _, tee := range tokenTEEs {
		v, _ := attest.Lookup(tee)
		for _, c := range corpus.Cases(t, tee) {
			data := c.EvidenceBytes(t)
			corpus.CheckPrefixesRejected(t, c, v, data, len(data), 1)
		}
	}
}

// TestCorpusInspect decodes every case without verifying it, and every
// prefix without a panic.
func TestCorpusInspect(t *testing.T) {
	for _, tee := range tokenTEEs {
		v, _ := attest.Lookup(tee)
		for _, c := range corpus.Cases(t, tee) {
			corpus.CheckInspect(t, c, v.(attest.Inspector))
		}
	}
}

// TestConcurrentVerify verifies the corpus tokens from several goroutines,
// which share the chain and JWKS caches; run it with -race.
func TestConcurrentVerify(t *testing.T) {
	type job struct {
		data []byte
		opts attest.Options
	}
	var jobs []job
	for _, tee := range tokenTEEs {
		for _, c := range corpus.Cases(t, tee) {
			if !c.Negative() {
				jobs = append(jobs, job{c.EvidenceBytes(t), attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}})
			}
		}
	}
	errs := make(chan error, 8*len(jobs))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, j := range jobs {
				if claims, err := attest.Verify(context.Background(), attest.Evidence{Data: j.data}, j.opts); claims == nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
