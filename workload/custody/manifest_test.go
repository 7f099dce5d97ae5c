package custody

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/workload"
)

func TestParseManifestRejects(t *testing.T) {
	key := func(b string) string { return strings.Repeat(b, 32) }
	parties := `"parties":[{"name":"a","key_sha256":"` + key("01") + `"},{"name":"b","key_sha256":"` + key("02") + `"}]`
	tests := []struct{ name, raw, want string }{
		{"not JSON", `{`, "invalid manifest JSON"},
		{"unknown field", `{"sealing_key":"a/b/c",` + parties + `,"keys":[{"name":"k","type":"ed25519","signers":["a"]}],"export":true}`, "unknown field"},
		{"sealing path", `{"sealing_key":"a/b",` + parties + `,"keys":[{"name":"k","type":"ed25519","signers":["a"]}]}`, "repository/type/tag"},
		{"sealing segment", `{"sealing_key":"a/../c",` + parties + `,"keys":[{"name":"k","type":"ed25519","signers":["a"]}]}`, "segment"},
		{"no parties", `{"sealing_key":"a/b/c","parties":[],"keys":[{"name":"k","type":"ed25519","signers":["a"]}]}`, "parties is empty"},
		{"shared key", `{"sealing_key":"a/b/c","parties":[{"name":"a","key_sha256":"` + key("01") + `"},{"name":"b","key_sha256":"` + key("01") + `"}],"keys":[{"name":"k","type":"ed25519","signers":["a"]}]}`, "of its own"},
		{"no keys", `{"sealing_key":"a/b/c",` + parties + `,"keys":[]}`, "keys is empty"},
		{"key type", `{"sealing_key":"a/b/c",` + parties + `,"keys":[{"name":"k","type":"rsa","signers":["a"]}]}`, "unknown key type"},
		{"no signers", `{"sealing_key":"a/b/c",` + parties + `,"keys":[{"name":"k","type":"ed25519","signers":[]}]}`, "no signers"},
		{"unknown signer", `{"sealing_key":"a/b/c",` + parties + `,"keys":[{"name":"k","type":"ed25519","signers":["z"]}]}`, "not a party"},
		{"empty prefix", `{"sealing_key":"a/b/c",` + parties + `,"keys":[{"name":"k","type":"ed25519","signers":["a"],"message_prefixes":[""]}]}`, "empty message prefix"},
		{"key twice", `{"sealing_key":"a/b/c",` + parties + `,"keys":[{"name":"k","type":"ed25519","signers":["a"]},{"name":"k","type":"secp256k1","signers":["a"]}]}`, "listed twice"},
		{"key name", `{"sealing_key":"a/b/c",` + parties + `,"keys":[{"name":"../k","type":"ed25519","signers":["a"]}]}`, "key name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseManifest([]byte(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseManifest() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestReleasePolicyRejectsIncompleteRule(t *testing.T) {
	if _, err := ReleasePolicy([]Release{{Path: "a/b/c"}}, false); err == nil {
		t.Error("a rule without measurement and manifest was accepted")
	}
	if _, err := ReleasePolicy([]Release{{Path: "a/b", Measurement: []byte{1}, Manifest: [32]byte{1}}}, false); err == nil {
		t.Error("a rule with an invalid path was accepted")
	}
	duplicateRules := []Release{
		{Path: "a/b/c", Measurement: bytes.Repeat([]byte{1}, 48), Manifest: [32]byte{1}},
		{Path: "a/b/c", Measurement: bytes.Repeat([]byte{2}, 48), Manifest: [32]byte{1}},
	}
	if _, err := ReleasePolicy(duplicateRules, false); err == nil || !strings.Contains(err.Error(), "two release rules for a/b/c") {
		t.Errorf("two rules for one path: err = %v, want one that names the path", err)
	}
}

// A measurement that is not 48 bytes can never match an SEV-SNP or TDX
// launch measurement, so the policy generator rejects it rather than
// writing a rule that denies every request.
func TestReleasePolicyRejectsMeasurementSize(t *testing.T) {
	cases := []struct {
		name        string
		tee         attest.TEE
		measurement []byte
	}{
		{"one byte", "", []byte{0x11}},
		{"SHA-256 in place of SHA-384", attest.TEESNP, bytes.Repeat([]byte{0x11}, 32)},
		{"64 bytes", attest.TEETDX, bytes.Repeat([]byte{0x11}, 64)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReleasePolicy([]Release{{Path: "a/b/c", Measurement: c.measurement, Manifest: workload.Digest{1}, TEE: c.tee}}, false)
			if err == nil {
				t.Fatal("the rule was accepted")
			}
			for _, want := range []string{"a/b/c", fmt.Sprintf("%d bytes", len(c.measurement)), "48-byte", "cloister inspect"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// A TDX rule expects the manifest digest as MRCONFIGID, zero-padded to 48
// bytes, and the policy compares the TEE as well.
func TestReleasePolicyPerTEE(t *testing.T) {
	digest := workload.Digest{0xab}
	measurement := bytes.Repeat([]byte{0x11}, 48)
	policy, err := ReleasePolicy([]Release{
		{Path: "keys/snp/k", Measurement: measurement, Manifest: digest},
		{Path: "keys/tdx/k", Measurement: measurement, Manifest: digest, TEE: attest.TEETDX},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	snpHostData := hex.EncodeToString(digest[:])
	tdxHostData := snpHostData + strings.Repeat("00", 16)
	for _, want := range []string{
		`"keys/snp/k": {"tee": "snp", "measurement": "` + hex.EncodeToString(measurement) + `", "host_data": "` + snpHostData + `"}`,
		`"keys/tdx/k": {"tee": "tdx", "measurement": "` + hex.EncodeToString(measurement) + `", "host_data": "` + tdxHostData + `"}`,
		"key_claims.tee == want.tee",
	} {
		if !strings.Contains(policy, want) {
			t.Errorf("policy does not contain %s:\n%s", want, policy)
		}
	}

	_, err = ReleasePolicy([]Release{{Path: "a/b/c", Measurement: measurement, Manifest: digest, TEE: attest.TEENitro}}, false)
	if err == nil || !strings.Contains(err.Error(), "SEV-SNP (HOST_DATA) or TDX (MRCONFIGID)") {
		t.Errorf("rule for a TEE without host data: err = %v, want one that names the supported TEEs", err)
	}
}

// FuzzParseManifest checks that no input makes ParseManifest panic and
// that an accepted manifest validates.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"name":"t","sealing_key":"custody/sealing/key","parties":[{"name":"a","key_sha256":"` + strings.Repeat("01", 32) + `"}],"keys":[{"name":"k","type":"secp256k1","signers":["a"],"message_prefixes":["tx:"]}]}`))
	f.Add([]byte(`{"sealing_key":"a/b/c","parties":[{"name":"a","key_sha256":"` + strings.Repeat("01", 32) + `"}],"keys":[{"name":"k","type":"secp256k1","signers":["a"],"public_key":"Anm+Zn753LusVaBilc6HCwcCm/zbLc4o2VnygVsW+BeY"}]}`))
	f.Add([]byte(`{"sealing_key":"a/b/c","parties":[{"name":"a","key_sha256":"` + strings.Repeat("01", 32) + `"}],"keys":[{"name":"k","type":"ed25519","signers":["a"],"public_key":"MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="}]}`))
	f.Add([]byte(`{"sealing_key":"a/b/c","keys":[{"type":"rsa"}]}`))
	f.Add([]byte(`{"parties":[{}],"keys":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, _, err := ParseManifest(raw)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Errorf("ParseManifest accepted a manifest that fails Validate: %v", err)
		}
		for _, k := range m.Keys {
			if _, ok := m.policy(k.Name); !ok {
				t.Errorf("key %q has no policy", k.Name)
			}
		}
	})
}
