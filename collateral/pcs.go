package collateral

import (
	"context"
	"fmt"
	"strings"
)

// Default Intel endpoints. The Root CA CRL is not served by the PCS API, so
// it comes from Intel's certificate site; a PCCS serves it as rootcacrl.
const (
	DefaultPCSURL       = "https://api.trustedservices.intel.com"
	DefaultRootCACRLURL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
)

// PCS fetches Intel DCAP collateral from the Provisioning Certification
// Service v4 or any PCCS that serves the same API: TCB Info, QE Identity,
// the PCK CRL and the Root CA CRL, with the issuer chains from the
// response headers.
type PCS struct {
	BaseURL string
	// RootCACRLURL is where the Intel SGX Root CA CRL is fetched from.
	RootCACRLURL string
	fetcher      *httpFetcher
}

// NewPCS returns a PCS client for baseURL (DefaultPCSURL when empty).
func NewPCS(baseURL, rootCACRLURL string, opts FetcherOptions) *PCS {
	if baseURL == "" {
		baseURL = DefaultPCSURL
	}
	if rootCACRLURL == "" {
		rootCACRLURL = DefaultRootCACRLURL
	}
	return &PCS{BaseURL: strings.TrimRight(baseURL, "/"), RootCACRLURL: rootCACRLURL, fetcher: newHTTPFetcher(opts)}
}

// requests lists what a DCAP verification for q needs.
func (p *PCS) requests(q Query) []request {
	platform := "sgx"
	if q.TEE == "tdx" {
		platform = "tdx"
	}
	var reqs []request
	if q.FMSPC != "" {
		fmspc := strings.ToUpper(q.FMSPC)
		reqs = append(reqs, p.request(
			fmt.Sprintf("pcs/%s/tcb/%s", platform, fmspc),
			fmt.Sprintf("%s/%s/certification/v4/tcb?fmspc=%s", p.BaseURL, platform, fmspc),
			KindTCBInfo, []string{"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"}, "application/json"))
	}
	reqs = append(reqs, p.request(
		fmt.Sprintf("pcs/%s/qe/identity", platform),
		fmt.Sprintf("%s/%s/certification/v4/qe/identity", p.BaseURL, platform),
		KindQEIdentity, []string{"SGX-Enclave-Identity-Issuer-Chain"}, "application/json"))
	ca := strings.ToLower(q.PCKCA)
	if ca == "" {
		ca = "processor"
	}
	reqs = append(reqs, p.request(
		"pcs/pckcrl/"+ca,
		fmt.Sprintf("%s/sgx/certification/v4/pckcrl?ca=%s&encoding=der", p.BaseURL, ca),
		KindCRL, []string{"SGX-PCK-CRL-Issuer-Chain"}, "application/pkix-crl", "application/x-pem-file", "application/octet-stream"))
	if p.RootCACRLURL != "" {
		reqs = append(reqs, p.request("pcs/rootcacrl", p.RootCACRLURL, KindCRL, nil,
			"application/pkix-crl", "application/x-x509-ca-cert", "application/octet-stream"))
	}
	return reqs
}

func (p *PCS) request(key, rawURL string, want Kind, chainHeaders []string, contentTypes ...string) request {
	return request{key: key, fetch: func(ctx context.Context) (*Entry, error) {
		resp, err := p.fetcher.get(ctx, rawURL, contentTypes...)
		if err != nil {
			return nil, err
		}
		if err := validateBody(rawURL, resp.body, want); err != nil {
			return nil, &UpstreamError{URL: rawURL, Status: 200, Err: err}
		}
		e := &Entry{URL: rawURL, Body: resp.body, NextUpdate: nextUpdateOf(resp.body)}
		for _, h := range chainHeaders {
			v := resp.header.Get(h)
			if v == "" {
				continue
			}
			chain, err := decodeChainHeader(v)
			if err != nil {
				return nil, &UpstreamError{URL: rawURL, Status: 200, Err: errPermanent{fmt.Errorf("%s: %w", h, err)}}
			}
			e.Headers = map[string]string{h: chain}
			break
		}
		return e, nil
	}}
}
