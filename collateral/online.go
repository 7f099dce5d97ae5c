package collateral

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Online is a Source that fetches collateral from AMD KDS and Intel PCS (or
// a PCCS), and OCSP responses from certificates' responders, through a
// Cache. It requests only the items a query needs.
type Online struct {
	Cache *Cache
	KDS   *KDS
	PCS   *PCS
	OCSP  *OCSP
}

// NewOnline returns an Online source with the public AMD KDS and Intel PCS
// endpoints, each certificate's own OCSP responder and a disk cache in dir.
func NewOnline(dir string, opts FetcherOptions) *Online {
	f := newHTTPFetcher(opts)
	return &Online{
		Cache: &Cache{Backend: DiskBackend{Dir: dir}, Logger: f.opts.Logger},
		KDS:   &KDS{BaseURL: DefaultKDSURL, fetcher: f},
		PCS:   &PCS{BaseURL: DefaultPCSURL, RootCACRLURL: DefaultRootCACRLURL, fetcher: f},
		OCSP:  &OCSP{fetcher: f},
	}
}

// Collateral fetches what q needs. An item the upstream does not have
// (HTTP 404), or cannot deliver now while no usable copy is cached, is left
// out and listed in Set.Ignored, so that the verifier names it as missing.
// A missing required item then rejects the evidence. A missing optional one
// (the SEV-SNP CRL) is reported as not checked, exactly as offline. Only when nothing at all can
// be served is the upstream failure returned as an error. A query field
// that the upstream does not define returns an ErrInvalidQuery error before
// any request is sent. The items are
// fetched concurrently, each within the per-host request budget.
func (o *Online) Collateral(ctx context.Context, q Query) (*Set, error) {
	var reqs []request
	var err error
	switch q.TEE {
	case "snp":
		if o.KDS != nil {
			reqs, err = o.KDS.requests(q)
		}
	case "sgx", "tdx":
		if o.PCS != nil {
			reqs, err = o.PCS.requests(q)
		}
	}
	if err != nil {
		return &Set{}, fmt.Errorf("collateral: %w", err)
	}
	if o.OCSP != nil {
		reqs = append(reqs, o.OCSP.requests(q)...)
	}
	set := &Set{}
	var errs []error
	served := 0
	for i, res := range o.getAll(ctx, reqs, q.At) {
		r, e, err := reqs[i], res.entry, res.err
		if errors.Is(err, ErrNotFound) {
			set.Ignored = append(set.Ignored, r.key+": not found upstream")
			set.Unserved = append(set.Unserved, r.key+": not found upstream")
			continue
		}
		var uncached *uncachedEntry
		if errors.As(err, &uncached) {
			o.Cache.logger().Warn("collateral item fetched but not cached", "key", r.key, "error", err)
			addEntry(set, uncached.entry)
			served++
			continue
		}
		if err != nil {
			o.Cache.logger().Warn("collateral item unavailable", "key", r.key, "error", err)
			set.Ignored = append(set.Ignored, r.key+": "+err.Error())
			set.Unserved = append(set.Unserved, r.key+": "+err.Error())
			errs = append(errs, err)
			continue
		}
		addEntry(set, e)
		served++
	}
	if served == 0 && len(errs) > 0 {
		return set, fmt.Errorf("collateral: %w", errors.Join(errs...))
	}
	return set, nil
}

// result is the outcome of one request's cache lookup or fetch.
type result struct {
	entry *Entry
	err   error
}

// getAll looks up or fetches every request at once and returns their
// results in the order of reqs. The requests are independent, so one slow
// upstream, such as an OCSP responder that does not respond, delays the
// query by its own timeouts and retries only, not by the sum over every
// certificate.
func (o *Online) getAll(ctx context.Context, reqs []request, at time.Time) []result {
	results := make([]result, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			e, err := o.Cache.Get(ctx, r.key, at, r.fetch)
			results[i] = result{entry: e, err: err}
		})
	}
	wg.Wait()
	return results
}

// request is one item to fetch: its cache key and how to fetch it.
type request struct {
	key   string
	fetch FetchFunc
}

// addEntry adds an entry's body and issuer-chain headers to set, marked as
// fetched. An upstream sends roots too (the last certificate of a PCS
// issuer chain or of a KDS cert_chain), and the mark keeps them from
// becoming trust anchors.
func addEntry(set *Set, e *Entry) {
	first := len(set.Items)
	if n, reason := set.AddBytes(e.URL, e.Body); n == 0 {
		set.Ignored = append(set.Ignored, e.URL+": "+reason)
	}
	for name, chain := range e.Headers {
		set.AddBytes(e.URL+"#"+name, []byte(chain))
	}
	for _, it := range set.Items[first:] {
		it.Fetched = true
	}
}

// nextUpdateOf finds when a fetched body stops being valid: a CRL's
// nextUpdate, the earliest notAfter of its certificates, the nextUpdate
// of an Intel TCB Info or QE Identity document, or the earliest end of
// validity of an OCSP response's SingleResponses (see
// OCSPSingleResponse.ValidUntil).
func nextUpdateOf(body []byte) time.Time {
	s := &Set{}
	s.AddBytes("", body)
	return s.nextUpdate()
}

// nextUpdate returns the earliest end of validity over the items of s, as
// nextUpdateOf defines it, or the zero time when no item states one.
func (s *Set) nextUpdate() time.Time {
	var earliest time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (earliest.IsZero() || t.Before(earliest)) {
			earliest = t
		}
	}
	for _, it := range s.Items {
		switch it.Kind {
		case KindCRL:
			consider(it.CRL.NextUpdate)
		case KindCertificate:
			consider(it.Certificate.NotAfter)
		case KindTCBInfo, KindQEIdentity:
			consider(documentNextUpdate(it.Raw))
		case KindOCSP:
			singles, _ := ParseOCSPResponse(it.Raw)
			for _, single := range singles {
				consider(single.ValidUntil())
			}
		}
	}
	return earliest
}

func documentNextUpdate(raw []byte) time.Time {
	body, err := signedObject(raw)
	if err != nil {
		return time.Time{}
	}
	var v struct {
		NextUpdate time.Time `json:"nextUpdate"`
	}
	if json.Unmarshal(body, &v) != nil {
		return time.Time{}
	}
	return v.NextUpdate
}

// decodeChainHeader decodes an issuer chain that Intel PCS sends URL-encoded
// in a header and checks it with parseChainPEM.
func decodeChainHeader(v string) (string, error) {
	pemText, err := url.QueryUnescape(v)
	if err != nil {
		return "", fmt.Errorf("invalid issuer chain header: %w", err)
	}
	text := []byte(strings.TrimSpace(pemText))
	if _, err := parseChainPEM(text, "issuer chain header"); err != nil {
		return "", err
	}
	return string(text) + "\n", nil
}

// parseChainPEM parses an issuer chain, which must be CERTIFICATE PEM
// blocks and nothing else. Text around or between the blocks, other block
// types and PEM headers are rejected rather than skipped. label names the
// chain in errors.
func parseChainPEM(text []byte, label string) ([]*x509.Certificate, error) {
	text = bytes.TrimSpace(text)
	rest := text
	var certs []*x509.Certificate
	for len(rest) > 0 {
		offset := len(text) - len(rest)
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, fmt.Errorf("%s has text outside PEM blocks at byte %d: %q",
				label, offset, truncate(rest, 32))
		}
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("%s has an invalid PEM block at byte %d", label, offset)
		}
		n := len(certs) + 1
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s block %d has PEM type %q, expected CERTIFICATE", label, n, b.Type)
		}
		if len(b.Headers) > 0 {
			return nil, fmt.Errorf("%s block %d has PEM headers, expected none", label, n)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid certificate in %s block %d: %w", label, n, err)
		}
		certs = append(certs, cert)
		rest = bytes.TrimSpace(rest)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s contains no certificate", label)
	}
	return certs, nil
}

// truncate returns at most n bytes of b, for quoting input in an error.
func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// validateBody checks that a fetched body holds collateral, so that a corrupt
// response is never cached.
func validateBody(rawURL string, body []byte, want Kind) error {
	s := &Set{}
	if n, reason := s.AddBytes(rawURL, body); n == 0 {
		return errPermanent{fmt.Errorf("response from %s is not collateral: %s", rawURL, reason)}
	}
	if want != "" && len(s.OfKind(want)) == 0 {
		return errPermanent{fmt.Errorf("response from %s contains no %s", rawURL, want)}
	}
	return nil
}
