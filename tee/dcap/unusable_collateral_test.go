package dcap

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// A TCB Info or QE Identity file that does not parse is skipped while a
// usable one remains, and named when none does.
func TestUnusableCollateralItem(t *testing.T) {
	e, set, anchors := emulated(t, EmulatorOptions{TEE: "tdx"})
	ev, err := e.Attest(context.Background(), []byte("report data"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []collateral.Kind{collateral.KindTCBInfo, collateral.KindQEIdentity} {
		good := set.OfKind(kind)[0]
		bad := &collateral.Item{Kind: kind, Source: "t3/zz_old.json",
			Raw: bytes.Replace(good.Raw, []byte(`"version":`), []byte(`"version":1,"was":`), 1)}
		bad.SHA256[0] ^= 1

		withBad := &collateral.Set{}
		for _, it := range set.Items {
			withBad.Add(it)
		}
		withBad.Add(bad)
		// The second verification reads the cached parse failure and must
		// still warn.
		v := NewVerifier()
		for range 2 {
			claims, err := v.Verify(context.Background(), *ev, attest.Options{Collateral: withBad, TrustAnchors: anchors})
			if err != nil {
				t.Fatalf("%s: a usable item beside an unusable one: %v", kind, err)
			}
			if !slices.ContainsFunc(claims.Warnings, func(w string) bool {
				return strings.HasPrefix(w, "skipped unusable collateral t3/zz_old.json: ") && strings.Contains(w, "remove the file")
			}) {
				t.Errorf("%s: warnings %q, want one that names the skipped file and the fix", kind, claims.Warnings)
			}
		}

		onlyBad := &collateral.Set{}
		for _, it := range set.Items {
			if it.Kind != kind {
				onlyBad.Add(it)
			}
		}
		onlyBad.Add(bad)
		for range 2 {
			_, err := v.Verify(context.Background(), *ev, attest.Options{Collateral: onlyBad, TrustAnchors: anchors})
			if err == nil || !strings.Contains(err.Error(), "collateral t3/zz_old.json") || !strings.Contains(err.Error(), "remove the file") {
				t.Errorf("%s: only an unusable item: err = %v, want one that names the file and the fix", kind, err)
			}
		}
	}
}

// A malformed file gets the collateral fix, not the parser's fix for
// evidence.
func TestUnusableItemMalformedFix(t *testing.T) {
	err := unusableItem(&collateral.Item{Source: "t3/bad.json"}, attest.Malformed("tcbInfo.signature", "not 64 bytes of hexadecimal", nil))
	if !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("error %v lost its kind", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "collateral t3/bad.json") || !strings.Contains(msg, "remove the file") || strings.Contains(msg, "evidence itself") {
		t.Errorf("error %q, want the file and the collateral fix only", msg)
	}
}

// With several unusable files and no usable one, the error names the first
// and a warning names each other, so that one run lists every file to fix.
func TestFirstUnusable(t *testing.T) {
	errs := []error{
		unusableItem(&collateral.Item{Source: "a.json"}, errors.New("first")),
		unusableItem(&collateral.Item{Source: "b.json"}, errors.New("second")),
	}
	var c attest.Claims
	err := firstUnusable(&c, errs)
	if err == nil || !strings.Contains(err.Error(), "a.json: first") {
		t.Errorf("err = %v, want the first file's error", err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "b.json: second") {
		t.Errorf("warnings = %q, want one naming b.json", c.Warnings)
	}
	if err := firstUnusable(&c, nil); err != nil {
		t.Errorf("no unusable file: err = %v, want nil", err)
	}
}
