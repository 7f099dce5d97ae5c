package collateral

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
)

// DefaultKDSURL is AMD's Key Distribution Service.
const DefaultKDSURL = "https://kdsintf.amd.com"

// KDS fetches SEV-SNP endorsement collateral from AMD's Key Distribution
// Service: the VCEK for a chip and reported TCB, the ASK/ASVK and ARK chain,
// and the CRL.
type KDS struct {
	BaseURL string
	fetcher *httpFetcher
}

// NewKDS returns a KDS client for baseURL (DefaultKDSURL when empty).
func NewKDS(baseURL string, opts FetcherOptions) *KDS {
	if baseURL == "" {
		baseURL = DefaultKDSURL
	}
	return &KDS{BaseURL: strings.TrimRight(baseURL, "/"), fetcher: newHTTPFetcher(opts)}
}

// kdsTCB splits a REPORTED_TCB into the KDS query parameters. Turin moved
// the fields and added the FMC SPL; earlier products share one layout.
func kdsTCB(product string, tcb uint64) string {
	b := func(i int) uint64 { return (tcb >> (8 * i)) & 0xff }
	if strings.EqualFold(product, "Turin") {
		return fmt.Sprintf("fmcSPL=%d&blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d", b(0), b(1), b(2), b(3), b(7))
	}
	return fmt.Sprintf("blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d", b(0), b(1), b(6), b(7))
}

// requests lists what an SNP verification needs. The VLEK itself is not
// served by KDS (the cloud provider installs it), so for VLEK only the
// chain and CRL are fetched.
func (k *KDS) requests(q Query) []request {
	if q.Product == "" {
		// Version 2 reports carry no CPUID, so the product is unknown
		// until a certificate names it. Only Milan and Genoa firmware
		// produced version 2 reports; the other product's requests end
		// in 404, which is skipped.
		// NOTE: 404 responses are not cached, so each such verification
		// requests the product that does not match from KDS again.
		var reqs []request
		for _, p := range []string{"Milan", "Genoa"} {
			withProduct := q
			withProduct.Product = p
			reqs = append(reqs, k.requests(withProduct)...)
		}
		return reqs
	}
	keyType := "vcek"
	if strings.EqualFold(q.SigningKey, "VLEK") {
		keyType = "vlek"
	}
	base := fmt.Sprintf("%s/%s/v1/%s", k.BaseURL, keyType, q.Product)
	reqs := []request{
		k.request(fmt.Sprintf("kds/%s/%s/cert_chain", keyType, q.Product), base+"/cert_chain", KindCertificate,
			"application/x-pem-file", "application/pem-certificate-chain", "text/plain", "application/octet-stream"),
		k.request(fmt.Sprintf("kds/%s/%s/crl", keyType, q.Product), base+"/crl", KindCRL,
			"application/pkix-crl", "application/octet-stream"),
	}
	if keyType == "vcek" && len(q.ChipID) > 0 {
		hwid := q.ChipID
		if strings.EqualFold(q.Product, "Turin") && len(hwid) > 8 {
			hwid = hwid[:8] // Turin VCEKs are indexed by the first 8 bytes of the chip ID
		}
		tcb := kdsTCB(q.Product, q.ReportedTCB)
		u := fmt.Sprintf("%s/%s?%s", base, hex.EncodeToString(hwid), tcb)
		key := fmt.Sprintf("kds/vcek/%s/%s/%s", q.Product, hex.EncodeToString(hwid), tcb)
		reqs = append(reqs, k.request(key, u, KindCertificate,
			"application/pkix-cert", "application/x-x509-ca-cert", "application/octet-stream"))
	}
	return reqs
}

func (k *KDS) request(key, rawURL string, want Kind, contentTypes ...string) request {
	return request{key: key, fetch: func(ctx context.Context) (*Entry, error) {
		resp, err := k.fetcher.get(ctx, rawURL, contentTypes...)
		if err != nil {
			return nil, err
		}
		if err := validateBody(rawURL, resp.body, want); err != nil {
			return nil, &UpstreamError{URL: rawURL, Status: 200, Err: err}
		}
		return &Entry{URL: rawURL, Body: resp.body, NextUpdate: nextUpdateOf(resp.body)}, nil
	}}
}
