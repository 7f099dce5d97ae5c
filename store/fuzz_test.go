package store

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzValidateResourcePath(f *testing.F) {
	for _, seed := range []string{"default/key/disk", "a/b", "a/../c", "", "/", "a/b/c/", "ü/b/c"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if ValidateResourcePath(path) != nil {
			return
		}
		// An accepted path must be safe to use as URL path segments.
		for _, r := range path {
			ok := r == '/' || r == '.' || r == '_' || r == '-' ||
				(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
			if !ok {
				t.Fatalf("accepted %q with character %q", path, r)
			}
		}
	})
}

func FuzzParseMasterKey(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	f.Add("")
	f.Add("====")
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 31)))
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseMasterKey(text)
		if err == nil && len(k.key) != MasterKeySize {
			t.Fatalf("accepted a %d-byte key", len(k.key))
		}
	})
}

func FuzzHexBytes(f *testing.F) {
	f.Add("00ff")
	f.Add("0")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, text string) {
		var b HexBytes
		if err := b.UnmarshalText([]byte(text)); err != nil {
			return
		}
		out, _ := b.MarshalText()
		var again HexBytes
		if err := again.UnmarshalText(out); err != nil || string(again) != string(b) {
			t.Fatalf("round trip of %q failed", text)
		}
	})
}

// Two records with different text fields must never encode alike, whichever
// of their request IDs, token IDs and devices are empty.
func FuzzAuditEncodingDistinct(f *testing.F) {
	f.Add("reason", "", "id", "", "reason", "id", "", "")
	f.Add("reason", "", "", "", "reason\x00\x00\x00\x00", "", "", "")
	f.Add("", "req", "tok", "", "", "req\x00\x00\x00\x03tok", "", "")
	f.Add("", "", "", "gpu0 nvidia-gpu", "", "", "gpu0 nvidia-gpu", "")
	f.Add("", "", "tok", "", "", "", "", "tok")
	f.Add("", "req", "", "dev", "", "req\x00\x00\x00\x00\x00\x00\x00\x03dev", "", "")
	f.Fuzz(func(t *testing.T, reasonA, requestA, tokenA, devicesA, reasonB, requestB, tokenB, devicesB string) {
		a := AuditRecord{Seq: 1, Action: AuditAttest, Reason: reasonA, RequestID: requestA, TokenID: tokenA, Devices: devicesA}
		b := AuditRecord{Seq: 1, Action: AuditAttest, Reason: reasonB, RequestID: requestB, TokenID: tokenB, Devices: devicesB}
		if a.Reason == b.Reason && a.RequestID == b.RequestID && a.TokenID == b.TokenID && a.Devices == b.Devices {
			return
		}
		if string(a.CanonicalEncoding()) == string(b.CanonicalEncoding()) {
			t.Fatalf("records (reason %q, request ID %q, token ID %q, devices %q) and (%q, %q, %q, %q) have the same encoding",
				reasonA, requestA, tokenA, devicesA, reasonB, requestB, tokenB, devicesB)
		}
	})
}

// storableText must return valid UTF-8 without NUL, and return valid text
// without NUL unchanged.
func FuzzStorableText(f *testing.F) {
	f.Add("GET /admin/a\x00b")
	f.Add("café\xc3")
	f.Add("\xff\xfe\x00")
	f.Add("ünïcode")
	f.Fuzz(func(t *testing.T, s string) {
		got := storableText(s)
		if !utf8.ValidString(got) {
			t.Errorf("storableText(%q) = %q, not valid UTF-8", s, got)
		}
		if strings.IndexByte(got, 0) >= 0 {
			t.Errorf("storableText(%q) = %q, contains NUL", s, got)
		}
		if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 && got != s {
			t.Errorf("storableText(%q) = %q, changed valid text", s, got)
		}
	})
}

// FuzzAuditedPutVersion checks that a parsed version is positive and
// formats back to the start of the reason it came from.
func FuzzAuditedPutVersion(f *testing.F) {
	for _, seed := range []string{
		"put secret version 1",
		"put secret version 12 through the Trustee admin API",
		"deleted secret",
		"put secret version 0",
		"put secret version 9223372036854775808",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, reason string) {
		version, ok := auditedPutVersion(reason)
		if !ok {
			return
		}
		if version < 1 {
			t.Fatalf("auditedPutVersion(%q) = %d, want a positive version", reason, version)
		}
		prefix := auditSecretPutPrefix + strconv.FormatInt(version, 10)
		if !strings.HasPrefix(reason, prefix) {
			t.Fatalf("auditedPutVersion(%q) = %d, but the reason does not start with %q", reason, version, prefix)
		}
	})
}
