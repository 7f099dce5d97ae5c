package collateral

import (
	"context"
	"fmt"
	"net/url"
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

// fmspcSize is the size of an FMSPC in bytes.
const fmspcSize = 6

// CheckFMSPC returns an ErrInvalidQuery error unless fmspc is 6 bytes in
// hexadecimal, in either case, as the PCS v4 tcb endpoint accepts it.
func CheckFMSPC(fmspc string) error {
	return checkHexField("FMSPC", fmspc, fmspcSize,
		"pass the FMSPC extension of the PCK certificate in hexadecimal")
}

// CheckPCKCA returns an ErrInvalidQuery error unless ca names a PCK CA that
// the PCS v4 pckcrl endpoint serves, processor or platform, in either case.
func CheckPCKCA(ca string) error {
	if lower := strings.ToLower(ca); lower != "processor" && lower != "platform" {
		return invalidQuery("PCKCA", ca, "Intel PCS serves PCK CRLs for the processor and platform CAs",
			"set PCKCA to processor or platform, after the issuer of the PCK certificate")
	}
	return nil
}

// checkPCSQuery checks the Query fields that PCS request URLs are built
// from against the values the PCS v4 API defines.
func checkPCSQuery(q Query) error {
	if q.TEE != "sgx" && q.TEE != "tdx" {
		return invalidQuery("TEE", q.TEE, "Intel PCS serves collateral for sgx and tdx",
			"set TEE to sgx or tdx")
	}
	if q.FMSPC != "" {
		if err := CheckFMSPC(q.FMSPC); err != nil {
			return fmt.Errorf("%w, or leave FMSPC empty to skip the TCB Info", err)
		}
	}
	if q.PCKCA != "" {
		if err := CheckPCKCA(q.PCKCA); err != nil {
			return fmt.Errorf("%w, or leave it empty for processor", err)
		}
	}
	return nil
}

// requests lists what a DCAP verification for q needs, or returns an
// ErrInvalidQuery error when a field of q is not a value PCS defines.
func (p *PCS) requests(q Query) ([]request, error) {
	if err := checkPCSQuery(q); err != nil {
		return nil, err
	}
	platform := q.TEE
	base, err := serviceURL(p.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("PCS base URL: %w", err)
	}
	var reqs []request
	if q.FMSPC != "" {
		fmspc := strings.ToUpper(q.FMSPC)
		u := base.JoinPath(platform, "certification", "v4", "tcb")
		u.RawQuery = url.Values{"fmspc": {fmspc}}.Encode()
		reqs = append(reqs, p.request(fmt.Sprintf("pcs/%s/tcb/%s", platform, fmspc), u.String(),
			KindTCBInfo, []string{"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"}, "application/json"))
	}
	reqs = append(reqs, p.request(
		fmt.Sprintf("pcs/%s/qe/identity", platform),
		base.JoinPath(platform, "certification", "v4", "qe", "identity").String(),
		KindQEIdentity, []string{"SGX-Enclave-Identity-Issuer-Chain"}, "application/json"))
	ca := strings.ToLower(q.PCKCA)
	if ca == "" {
		ca = "processor"
	}
	crlURL := base.JoinPath("sgx", "certification", "v4", "pckcrl")
	crlURL.RawQuery = url.Values{"ca": {ca}, "encoding": {"der"}}.Encode()
	reqs = append(reqs, p.request("pcs/pckcrl/"+ca, crlURL.String(),
		KindCRL, []string{"SGX-PCK-CRL-Issuer-Chain"}, "application/pkix-crl", "application/x-pem-file", "application/octet-stream"))
	if p.RootCACRLURL != "" {
		reqs = append(reqs, p.request("pcs/rootcacrl", p.RootCACRLURL, KindCRL, nil,
			"application/pkix-crl", "application/x-x509-ca-cert", "application/octet-stream"))
	}
	return reqs, nil
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
