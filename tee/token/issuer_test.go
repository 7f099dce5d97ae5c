package token

import "testing"

// TestIssuerURLForm accepts an MAA or Intel Trust Authority issuer only as
// "https://" and a host name of the service's domain, with no user
// information, port, path, query or fragment.
func TestIssuerURLForm(t *testing.T) {
	cases := []struct {
		name  string
		valid func(string) bool
		iss   string
		want  bool
	}{
		{"MAA shared provider", validMAAIssuer, "https://sharedeus2.eus2.attest.azure.net", true},
		{"MAA custom provider", validMAAIssuer, "https://contoso.weu.attest.azure.net", true},
		{"MAA suffix of another domain", validMAAIssuer, "https://evil.attest.azure.net.example.com", false},
		{"MAA user information", validMAAIssuer, "https://evil.example@x.attest.azure.net", false},
		{"MAA path", validMAAIssuer, "https://x.attest.azure.net/evil", false},
		{"MAA trailing slash", validMAAIssuer, "https://x.attest.azure.net/", false},
		{"MAA query", validMAAIssuer, "https://x.attest.azure.net?x=1", false},
		{"MAA fragment", validMAAIssuer, "https://x.attest.azure.net#x", false},
		{"MAA port", validMAAIssuer, "https://x.attest.azure.net:8443", false},
		{"MAA bare domain", validMAAIssuer, "https://attest.azure.net", false},
		{"MAA empty label", validMAAIssuer, "https://.attest.azure.net", false},
		{"MAA plain HTTP", validMAAIssuer, "http://x.attest.azure.net", false},
		{"ITA name", validITAIssuer, "Intel Trust Authority", true},
		{"ITA portal", validITAIssuer, "https://portal.trustauthority.intel.com", true},
		{"ITA apex", validITAIssuer, "https://trustauthority.intel.com", true},
		{"ITA user information", validITAIssuer, "https://evil.example@portal.trustauthority.intel.com", false},
		{"ITA path", validITAIssuer, "https://portal.trustauthority.intel.com/evil", false},
		{"ITA port", validITAIssuer, "https://portal.trustauthority.intel.com:8443", false},
		{"ITA suffix of another domain", validITAIssuer, "https://trustauthority.intel.com.example.com", false},
	}
	for _, tc := range cases {
		if got := tc.valid(tc.iss); got != tc.want {
			t.Errorf("%s: issuer %q valid %v, want %v", tc.name, tc.iss, got, tc.want)
		}
	}
}
