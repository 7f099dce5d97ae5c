package kbs

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

func TestInitDataPCR8(t *testing.T) {
	body := "version = \"0.1.0\"\nalgorithm = \"sha256\"\n\n[data]\n\"aa.toml\" = \"\"\n"
	digest := sha256.Sum256([]byte(body))
	good := sha256.Sum256(append(make([]byte, 32), digest[:]...))

	withPCR8 := func(v []byte) *attest.Claims {
		c := &attest.Claims{}
		c.SetMeasurement("pcr8", v)
		return c
	}
	cases := []struct {
		name   string
		tee    string
		body   string
		claims *attest.Claims
		want   string // empty: accepted
	}{
		{name: "azure snp bound", tee: "az-snp-vtpm", body: body, claims: withPCR8(good[:])},
		{name: "azure tdx bound", tee: "az-tdx-vtpm", body: body, claims: withPCR8(good[:])},
		{name: "plain tpm bound", tee: "tpm", body: body, claims: withPCR8(good[:])},
		{name: "pcr8 differs", tee: "az-snp-vtpm", body: body, claims: withPCR8(digest[:]), want: "PCR 8 does not equal"},
		{name: "no pcr8", tee: "az-snp-vtpm", body: body, claims: &attest.Claims{}, want: "no PCR 8"},
		{name: "sha384 document", tee: "az-snp-vtpm", body: strings.Replace(body, "sha256", "sha384", 1),
			claims: withPCR8(good[:]), want: "must use sha256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkInitData(tc.tee, &InitData{Format: "toml", Body: tc.body}, tc.claims)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			var ae *attest.Error
			if !errors.As(err, &ae) {
				t.Errorf("error %T is not an attest.Error", err)
			}
		})
	}
}
