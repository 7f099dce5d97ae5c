package collateral

import (
	"net/url"
	"testing"
)

// FuzzDecodeChainHeader decodes issuer chain headers as Intel PCS sends
// them, seeded with a real chain. An accepted header decodes to PEM text
// that loads as at least one certificate.
func FuzzDecodeChainHeader(f *testing.F) {
	f.Add(url.QueryEscape(string(corpusFile(f, pcsCase+"/tcb_info_issuer_chain.pem"))))
	f.Add("-----BEGIN%20CERTIFICATE-----%0A%0A-----END%20CERTIFICATE-----")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, header string) {
		pemText, err := decodeChainHeader(header)
		if err != nil {
			return
		}
		set := &Set{}
		if n, reason := set.AddBytes("issuer chain", []byte(pemText)); n == 0 || len(set.Certificates()) == 0 {
			t.Errorf("accepted header %q decodes to PEM that loads no certificate: %s", header, reason)
		}
	})
}
