package workload

import (
	"bytes"
	"testing"
)

func FuzzCanonical(f *testing.F) {
	f.Add(testManifest)
	f.Add([]byte(`{"b":[1,2.50,"\u00e9<"],"a":{"z":null,"y":true}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		canon, err := Canonical(raw)
		if err != nil {
			return
		}
		again, err := Canonical(canon)
		if err != nil {
			t.Fatalf("Canonical rejects its own output %q: %v", canon, err)
		}
		if !bytes.Equal(canon, again) {
			t.Fatalf("Canonical is not idempotent: %q then %q", canon, again)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	f.Add("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	f.Add("")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		if again, err := ParseDigest(d.String()); err != nil || again != d {
			t.Fatalf("ParseDigest(%q) does not round-trip: %v", s, err)
		}
	})
}
