package dcap

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// reviewQuote returns an emulated quote whose report data is reportData,
// with its collateral and the development root as the only trust anchor.
func reviewQuote(t *testing.T, tee string, reportData []byte) (attest.Evidence, attest.Options) {
	t.Helper()
	e, err := NewEmulator(EmulatorOptions{TEE: tee})
	if err != nil {
		t.Fatal(err)
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})
	ev, err := e.Attest(context.Background(), reportData)
	if err != nil {
		t.Fatal(err)
	}
	return *ev, attest.Options{At: time.Now(), Collateral: e.Collateral(), TrustAnchors: anchors}
}

func TestReviewNonceChecked(t *testing.T) {
	for _, tee := range []string{"sgx", "tdx"} {
		t.Run(tee, func(t *testing.T) {
			ev, opts := reviewQuote(t, tee, []byte("fresh nonce"))

			opts.Nonce = []byte("fresh nonce")
			c, err := NewVerifier().Verify(context.Background(), ev, opts)
			if err != nil {
				t.Fatalf("matching nonce: %v", err)
			}
			if !hasCheck(c, "nonce", attest.CheckPassed) {
				t.Errorf("matching nonce: checks %+v lack a passed nonce check", c.Checks)
			}

			opts.Nonce = []byte("other nonce")
			_, err = NewVerifier().Verify(context.Background(), ev, opts)
			if !errors.Is(err, attest.ErrBinding) {
				t.Fatalf("mismatched nonce: error %v, expected an ErrBinding error", err)
			}
		})
	}
}

func hasCheck(c *attest.Claims, name string, result attest.CheckResult) bool {
	for _, ch := range c.Checks {
		if ch.Name == name && ch.Result == result {
			return true
		}
	}
	return false
}
