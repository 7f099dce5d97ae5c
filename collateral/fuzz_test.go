package collateral

import (
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/internal/snpabi"
	"github.com/cloister-dev/cloister/internal/testcert"
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

// FuzzCheckBundleKey checks bundle entries whose key and body an edited
// manifest controls, seeded with keys that the request builders form and
// real bodies. No input panics, and an accepted key names the kind of every
// item of the body.
func FuzzCheckBundleKey(f *testing.F) {
	tcbInfo := corpusFile(f, pcsCase+"/tcb_info.json")
	for _, seed := range []struct {
		key  string
		body []byte
	}{
		{bundleTCBKey, tcbInfo},
		{"pcs/tdx/qe/identity", corpusFile(f, pcsCase+"/qe_identity.json")},
		{bundleCRLKey, corpusFile(f, pcsCase+"/pck_crl.der")},
		{"kds/vcek/Milan/" + strings.Repeat("00", snpabi.ChipIDSize) + "/blSPL=1&teeSPL=0&snpSPL=8&ucodeSPL=115",
			corpusFile(f, "snp/milan-vcek-v2-cmc/vcek.der")},
		{"kds/vcek/Turin/0011223344556677/fmcSPL=0&blSPL=1&teeSPL=0&snpSPL=8&ucodeSPL=115", tcbInfo},
		{"ocsp/" + strings.Repeat("ab", 32) + "/2", []byte("{}")},
	} {
		f.Add(seed.key, seed.body)
	}
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		s := &Set{}
		if n, _ := s.AddBytes("", body); n == 0 {
			return
		}
		me := &ManifestEntry{File: "item-000", Key: key}
		spec, err := checkBundleKey(me, s)
		if err != nil {
			return
		}
		for _, it := range s.Items {
			if it.Kind != spec.kind {
				t.Errorf("key %q accepted a %s item, but names %s", key, it.Kind, spec.kind)
			}
		}
	})
}

// FuzzParseRetryAfter reads Retry-After values from an upstream. The delay
// is never negative, and a positive number of seconds is never shortened.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "5", " 120 ", "-1", "9223372037", "Thu, 01 Jan 2026 00:00:30 GMT", "soon"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 {
			t.Errorf("parseRetryAfter(%q) = %s, want a delay of at least 0", v, d)
		}
		if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && secs > 0 && d < time.Second {
			t.Errorf("parseRetryAfter(%q) = %s, want at least 1s", v, d)
		}
	})
}

// FuzzParseOCSPResponse decodes OCSP responses, seeded with generated
// responses with one to three SingleResponses of each status, one with a
// critical single extension, and an error response. An accepted response has a CertID with a serial number and a
// known status in every SingleResponse, loads as one OCSP collateral item,
// and never makes FindOCSPSingleResponse or golang.org/x/crypto/ocsp panic.
// A SingleResponse that FindOCSPSingleResponse returns is about the
// certificate.
func FuzzParseOCSPResponse(f *testing.F) {
	p, other := newOCSPPKI(f), newOCSPPKI(f)
	now := time.Now()
	good := p.response(f, crypto.SHA384, now, now.Add(time.Hour))
	revoked := p.responseWith(f, ocsp.Response{Status: ocsp.Revoked, RevokedAt: now.Add(-time.Hour), RevocationReason: ocsp.CertificateHold, ThisUpdate: now})
	unknown := other.responseWith(f, ocsp.Response{Status: ocsp.Unknown, ThisUpdate: now, NextUpdate: now.Add(time.Hour)})
	f.Add(good)
	f.Add(p.response(f, crypto.SHA1, now, time.Time{}))
	f.Add(revoked)
	f.Add(testcert.OCSPJoin(f, p.caKey, unknown, good))
	f.Add(testcert.OCSPJoin(f, p.caKey, unknown, revoked, good))
	f.Add(testcert.OCSPJoin(f, p.caKey, good, unknown))
	f.Add(testcert.OCSPJoin(f, p.caKey, other.responseWith(f, ocsp.Response{Status: ocsp.Good, ThisUpdate: now,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}}), good))
	f.Add(ocsp.TryLaterErrorResponse)
	f.Fuzz(func(t *testing.T, data []byte) {
		singles, err := ParseOCSPResponse(data)
		if err != nil {
			return
		}
		for i, s := range singles {
			if s.CertID.SerialNumber == nil {
				t.Fatalf("SingleResponse %d has no serial number", i)
			}
			if s.Status != ocsp.Good && s.Status != ocsp.Revoked && s.Status != ocsp.Unknown {
				t.Fatalf("SingleResponse %d has status %d", i, s.Status)
			}
			s.CertID.Matches(p.cert, p.ca)
		}
		if s, err := FindOCSPSingleResponse(singles, p.cert, p.ca); err == nil && !s.CertID.Matches(p.cert, p.ca) {
			t.Errorf("FindOCSPSingleResponse returned SingleResponse %d, which is about another certificate", s.Index)
		}
		set := &Set{}
		if n, reason := set.AddBytes("fuzz", data); n != 1 || set.Items[0].Kind != KindOCSP {
			t.Errorf("accepted response loads as %d items (%s), expected one OCSP item", n, reason)
		}
		ocsp.ParseResponseForCert(data, p.cert, nil)
	})
}
