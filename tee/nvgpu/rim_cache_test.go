package nvgpu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// checkSameOutcome fails t unless got, from the cache, is the outcome of a
// new verification, want: the same error text, or the same RIM and chain.
func checkSameOutcome(t testing.TB, got, want rimOutcome) {
	t.Helper()
	switch {
	case (got.err == nil) != (want.err == nil):
		t.Fatalf("cached error %v, new verification error %v", got.err, want.err)
	case got.err != nil && got.err.Error() != want.err.Error():
		t.Fatalf("cached error %q, new verification error %q", got.err, want.err)
	case (got.rim == nil) != (want.rim == nil):
		t.Fatalf("cached RIM %v, new verification RIM %v", got.rim, want.rim)
	}
	if got.product != want.product || got.version != want.version {
		t.Errorf("cached product %q and version %q, new verification %q and %q", got.product, got.version, want.product, want.version)
	}
	if got.rim == nil {
		return
	}
	if got.rim.Version != want.rim.Version || len(got.rim.Measurements) != len(want.rim.Measurements) {
		t.Errorf("cached RIM %+v, new verification RIM %+v", got.rim.RIM, want.rim.RIM)
	}
	if len(got.rim.chain) != len(want.rim.chain) {
		t.Fatalf("cached chain of %d certificates, new verification %d", len(got.rim.chain), len(want.rim.chain))
	}
	for i := range got.rim.chain {
		if !got.rim.chain[i].Equal(want.rim.chain[i]) {
			t.Errorf("chain certificate %d: cached %q, new verification %q", i, got.rim.chain[i].Subject, want.rim.chain[i].Subject)
		}
	}
}

// A cache filled at one time and read at another gives the outcome of a
// new verification at the second time. The times cover every pair of:
// before the signer is valid, inside every window, after the signer
// expired, and after only the root expired.
func TestRIMCacheMatchesNewVerification(t *testing.T) {
	driver, _ := matchingRIMs()
	short := newRIMSigner(t, testTime.Add(time.Hour))
	rootFirst := newRIMSignerWithRoot(t, testTime.Add(10*24*time.Hour), testTime.Add(100*24*time.Hour))
	signed := short.sign(t, driver.xml(), true)
	altered := bytes.Replace(signed, []byte(attest.Hex(block(1)).String()), []byte(attest.Hex(bytesOf(0x44, 48)).String()), 1)
	if bytes.Equal(altered, signed) {
		t.Fatal("the golden value of index 0 was not found in the signed RIM")
	}
	documents := []struct {
		name  string
		data  []byte
		roots []*x509.Certificate
	}{
		{"signer expires first", signed, []*x509.Certificate{short.root}},
		{"root expires first", rootFirst.sign(t, driver.xml(), true), []*x509.Certificate{rootFirst.root}},
		{"altered after signing", altered, []*x509.Certificate{short.root}},
		{"untrusted root", signed, []*x509.Certificate{rootFirst.root}},
		{"truncated", signed[:len(signed)/2], []*x509.Certificate{short.root}},
		{"not SWID", []byte("<notes/>"), []*x509.Certificate{short.root}},
	}
	times := []struct {
		name string
		at   time.Time
	}{
		{"before signer", testTime.Add(-48 * time.Hour)},
		{"valid", testTime},
		{"signer expired", testTime.Add(2 * time.Hour)},
		{"root expired", testTime.Add(20 * 24 * time.Hour)},
	}
	for _, doc := range documents {
		sum := sha256.Sum256(doc.data)
		rootsKey := rootsFingerprint(doc.roots)
		for _, fill := range times {
			for _, read := range times {
				t.Run(doc.name+"/"+fill.name+"/"+read.name, func(t *testing.T) {
					var cache rimCache
					cache.verify(doc.data, sum, doc.roots, rootsKey, fill.at)
					got := cache.verify(doc.data, sum, doc.roots, rootsKey, read.at)
					checkSameOutcome(t, got, newRIMVerification(doc.data, doc.roots, read.at).outcome)
				})
			}
		}
	}
}

// A RIM verified once is taken from the cache at another time inside every
// validity window, without a new verification.
func TestRIMCacheHit(t *testing.T) {
	driver, _ := matchingRIMs()
	s := newRIMSigner(t, testTime.Add(time.Hour))
	data := s.sign(t, driver.xml(), true)
	sum, roots := sha256.Sum256(data), []*x509.Certificate{s.root}
	var cache rimCache
	first := cache.verify(data, sum, roots, rootsFingerprint(roots), testTime)
	if first.err != nil {
		t.Fatal(first.err)
	}
	second := cache.verify(data, sum, roots, rootsFingerprint(roots), testTime.Add(30*time.Minute))
	if second.rim != first.rim {
		t.Errorf("second verification returned a new RIM, expected the cached one")
	}
	if cache.entries.Len() != 1 {
		t.Errorf("cache holds %d entries, expected 1", cache.entries.Len())
	}
}

// A RIM verified under one set of roots is not trusted under another, in
// the cache and through the Verifier.
func TestRIMCacheKeyedByRoots(t *testing.T) {
	driver, vbios := matchingRIMs()
	s := newRIMSigner(t, testTime.Add(time.Hour))
	other := newRIMSigner(t, testTime.Add(time.Hour))
	data := s.sign(t, driver.xml(), true)
	sum := sha256.Sum256(data)

	var cache rimCache
	trusted := []*x509.Certificate{s.root}
	if out := cache.verify(data, sum, trusted, rootsFingerprint(trusted), testTime); out.err != nil {
		t.Fatal(out.err)
	}
	untrusted := []*x509.Certificate{other.root}
	out := cache.verify(data, sum, untrusted, rootsFingerprint(untrusted), testTime)
	if !errors.Is(out.err, attest.ErrChain) {
		t.Fatalf("under another root: error %v, expected ErrChain", out.err)
	}

	g := newTestGPU(t, testFWID(0xf1), nil)
	files := map[string][]byte{"driver.swidtag": data, "vbios.swidtag": s.sign(t, vbios.xml(), true)}
	evidence := attest.Evidence{Data: []byte(hex.EncodeToString(g.build(t, g.parts(testNonce(7)))))}
	v := &Verifier{}
	if _, err := v.Verify(context.Background(), evidence, rimOptions(t, g, s, files)); err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(context.Background(), evidence, rimOptions(t, g, other, files))
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("under another root after a pass: error %v, expected ErrChain", err)
	}
	if ch := checkOf(t, claims, "rim"); ch.Result != attest.CheckFailed {
		t.Errorf("rim check %+v, expected failed", ch)
	}
}

// signerExpiryCase returns a generated GPU report with its matching RIMs
// and the options to verify them at testTime, where the RIM signer is
// valid, and at testTime+2h, after it expired. The GPU's own certificates
// are valid until testTime+3h.
func signerExpiryCase(t *testing.T) (evidence attest.Evidence, valid, expired attest.Options) {
	t.Helper()
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	files := map[string][]byte{"driver.swidtag": s.sign(t, driver.xml(), true), "vbios.swidtag": s.sign(t, vbios.xml(), true)}
	evidence = attest.Evidence{Data: []byte(hex.EncodeToString(g.build(t, g.parts(testNonce(7)))))}
	valid = rimOptions(t, g, s, files)
	expired = rimOptions(t, g, s, files)
	expired.At = testTime.Add(2 * time.Hour)
	return evidence, valid, expired
}

// Through the Verifier, a RIM cached at a valid time fails once its signer
// expired exactly as on a Verifier that never saw it, and a RIM cached as
// expired passes again at a valid time.
func TestRIMCacheSignerExpiry(t *testing.T) {
	evidence, valid, expired := signerExpiryCase(t)
	verify := func(v *Verifier, opts attest.Options) (attest.Check, error) {
		t.Helper()
		claims, err := v.Verify(context.Background(), evidence, opts)
		return checkOf(t, claims, "rim"), err
	}
	warm := &Verifier{}
	if ch, err := verify(warm, valid); err != nil || ch.Result != attest.CheckPassed {
		t.Fatalf("at a valid time: rim check %+v, error %v", ch, err)
	}
	warmCheck, warmErr := verify(warm, expired)
	coldCheck, coldErr := verify(&Verifier{}, expired)
	if !errors.Is(warmErr, attest.ErrCollateralExpired) {
		t.Fatalf("cached RIM after the signer expired: error %v, expected ErrCollateralExpired", warmErr)
	}
	if coldErr == nil || warmErr.Error() != coldErr.Error() {
		t.Errorf("cached RIM error %q, new verification error %v", warmErr, coldErr)
	}
	if warmCheck != coldCheck {
		t.Errorf("cached RIM check %+v, new verification check %+v", warmCheck, coldCheck)
	}

	if ch, err := verify(warm, valid); err != nil || ch.Result != attest.CheckPassed {
		t.Errorf("at a valid time after the expired lookup: rim check %+v, error %v", ch, err)
	}
}

// One Verifier serves concurrent verifications at a valid time and after
// the RIM signer expired, each with its own outcome.
func TestRIMCacheConcurrent(t *testing.T) {
	evidence, valid, expired := signerExpiryCase(t)
	v := &Verifier{}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			opts := valid
			if i%2 == 1 {
				opts = expired
			}
			_, errs[i] = v.Verify(context.Background(), evidence, opts)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Errorf("verification %d at a valid time: %v", i, err)
		}
		if i%2 == 1 && !errors.Is(err, attest.ErrCollateralExpired) {
			t.Errorf("verification %d after the signer expired: error %v, expected ErrCollateralExpired", i, err)
		}
	}
}

// The roots are a set, so listing them in another order or twice finds the
// entry that the first verification stored.
func TestRIMCacheKeyIgnoresRootOrder(t *testing.T) {
	driver, _ := matchingRIMs()
	s := newRIMSigner(t, testTime.Add(time.Hour))
	other := newRIMSigner(t, testTime.Add(time.Hour))
	data := s.sign(t, driver.xml(), true)
	sum := sha256.Sum256(data)

	orders := [][]*x509.Certificate{
		{s.root, other.root},
		{other.root, s.root},
		{other.root, s.root, other.root},
	}
	want := rootsFingerprint(orders[0])
	for _, roots := range orders[1:] {
		if got := rootsFingerprint(roots); got != want {
			t.Errorf("fingerprint of %d roots in another order = %x, want %x", len(roots), got, want)
		}
	}
	if got := rootsFingerprint([]*x509.Certificate{s.root}); got == want {
		t.Error("fingerprint of one root equals that of two")
	}

	var cache rimCache
	first := cache.verify(data, sum, orders[0], rootsFingerprint(orders[0]), testTime)
	if first.err != nil {
		t.Fatal(first.err)
	}
	for _, roots := range orders[1:] {
		out := cache.verify(data, sum, roots, rootsFingerprint(roots), testTime.Add(time.Minute))
		if out.rim != first.rim {
			t.Errorf("verification under %d reordered roots returned a new RIM, expected the cached one", len(roots))
		}
	}
	if n := cache.entries.Len(); n != 1 {
		t.Errorf("cache holds %d entries, expected 1", n)
	}
}
