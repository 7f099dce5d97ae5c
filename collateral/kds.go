package collateral

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cloister-dev/cloister/internal/snpabi"
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

// kdsTCB returns the KDS query parameters of a REPORTED_TCB as the cache
// key spells them, in snpabi.TCBLayout order.
func kdsTCB(product string, tcb uint64) string {
	var parts []string
	for _, f := range snpabi.TCBLayout(product) {
		parts = append(parts, fmt.Sprintf("%s=%d", f.KDSParameter, snpabi.TCBByte(tcb, f.Byte)))
	}
	return strings.Join(parts, "&")
}

// kdsTCBQuery returns the KDS query parameters of a REPORTED_TCB.
func kdsTCBQuery(product string, tcb uint64) url.Values {
	v := url.Values{}
	for _, f := range snpabi.TCBLayout(product) {
		v.Set(f.KDSParameter, strconv.FormatUint(snpabi.TCBByte(tcb, f.Byte), 10))
	}
	return v
}

// checkKDSQuery checks the Query fields that KDS request URLs are built
// from against the values KDS defines.
func checkKDSQuery(q Query) error {
	if q.Product != "" && !slices.Contains(snpabi.Products, q.Product) {
		return invalidQuery("Product", q.Product, "AMD KDS serves Milan, Genoa and Turin",
			"set Product to one of them, spelled so, or leave it empty to try Milan and Genoa")
	}
	if q.SigningKey != "" && !strings.EqualFold(q.SigningKey, "VCEK") && !strings.EqualFold(q.SigningKey, "VLEK") {
		return invalidQuery("SigningKey", q.SigningKey, "AMD KDS serves VCEK and VLEK certificate chains",
			"set SigningKey to VCEK or VLEK, or leave it empty for VCEK")
	}
	if len(q.ChipID) == 0 {
		return nil
	}
	if len(q.ChipID) != snpabi.ChipIDSize {
		return invalidQuery("ChipID", hex.EncodeToString(q.ChipID),
			fmt.Sprintf("a chip ID is %d bytes, this one is %d", snpabi.ChipIDSize, len(q.ChipID)),
			"pass the CHIP_ID field of the attestation report unchanged")
	}
	if bytes.Equal(q.ChipID, make([]byte, snpabi.ChipIDSize)) {
		return invalidQuery("ChipID", hex.EncodeToString(q.ChipID),
			"an all-zero chip ID is a masked one (MASK_CHIP_ID) and names no VCEK",
			"leave ChipID empty when the report masks it, and pass the VCEK with the evidence instead")
	}
	return nil
}

// requests lists what an SNP verification needs, or returns an
// ErrInvalidQuery error when a field of q is not a value KDS defines. The
// VLEK itself is not served by KDS (the cloud provider installs it), so for
// VLEK only the chain and CRL are fetched.
func (k *KDS) requests(q Query) ([]request, error) {
	if err := checkKDSQuery(q); err != nil {
		return nil, err
	}
	if q.Product == "" {
		// Version 2 reports carry no CPUID, so the product is unknown
		// until a certificate names it. Only Milan and Genoa firmware
		// produced version 2 reports; the other product's requests end
		// in 404, which is skipped.
		// NOTE: 404 responses are not cached, so each such verification
		// requests the product that does not match from KDS again.
		var reqs []request
		for _, p := range snpabi.PreTurinProducts {
			withProduct := q
			withProduct.Product = p
			productReqs, err := k.requests(withProduct)
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, productReqs...)
		}
		return reqs, nil
	}
	keyType := "vcek"
	if strings.EqualFold(q.SigningKey, "VLEK") {
		keyType = "vlek"
	}
	base, err := serviceURL(k.BaseURL, keyType, "v1", q.Product)
	if err != nil {
		return nil, fmt.Errorf("KDS base URL: %w", err)
	}
	reqs := []request{
		k.request(fmt.Sprintf("kds/%s/%s/cert_chain", keyType, q.Product), base.JoinPath("cert_chain").String(), KindCertificate,
			"application/x-pem-file", "application/pem-certificate-chain", "text/plain", "application/octet-stream"),
		k.request(fmt.Sprintf("kds/%s/%s/crl", keyType, q.Product), base.JoinPath("crl").String(), KindCRL,
			"application/pkix-crl", "application/octet-stream"),
	}
	if keyType == "vcek" && len(q.ChipID) > 0 {
		hwid := snpabi.HWID(q.Product, q.ChipID)
		u := base.JoinPath(hex.EncodeToString(hwid))
		u.RawQuery = kdsTCBQuery(q.Product, q.ReportedTCB).Encode()
		key := fmt.Sprintf("kds/vcek/%s/%s/%s", q.Product, hex.EncodeToString(hwid), kdsTCB(q.Product, q.ReportedTCB))
		reqs = append(reqs, k.request(key, u.String(), KindCertificate,
			"application/pkix-cert", "application/x-x509-ca-cert", "application/octet-stream"))
	}
	return reqs, nil
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
