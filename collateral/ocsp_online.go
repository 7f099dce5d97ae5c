package collateral

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxOCSPResponseSize bounds a fetched OCSP response. A response about one
// certificate carries at most a few responder certificates, far below it.
const maxOCSPResponseSize = 64 << 10

// OCSP fetches OCSP responses with HTTP POST (RFC 6960 appendix A.1).
type OCSP struct {
	// URL, when set, receives every request in place of each
	// certificate's own responder: a mirror for an air-gapped site, or a
	// test responder.
	URL     string
	fetcher *httpFetcher
}

// NewOCSP returns an OCSP client that sends each request to the
// certificate's own responder, or to url when url is set.
func NewOCSP(url string, opts FetcherOptions) *OCSP {
	return &OCSP{URL: url, fetcher: newHTTPFetcher(opts)}
}

// responder returns the URL to send r to: o.URL, else the first HTTP
// responder that the certificate names, else r.Responder.
func (o *OCSP) responder(r OCSPRequest) string {
	if o.URL != "" {
		return o.URL
	}
	for _, s := range r.Certificate.OCSPServer {
		if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return s
		}
	}
	return r.Responder
}

// requests lists one request for each certificate of q.OCSP.
func (o *OCSP) requests(q Query) []request {
	reqs := make([]request, 0, len(q.OCSP))
	for _, r := range q.OCSP {
		reqs = append(reqs, o.request(r))
	}
	return reqs
}

func (o *OCSP) request(r OCSPRequest) request {
	responder := o.responder(r)
	name := strconv.Quote(r.Certificate.Subject.String())
	return request{key: OCSPCacheKey(r.Certificate, r.Issuer), fetch: func(ctx context.Context) (*Entry, error) {
		if responder == "" {
			return nil, &UpstreamError{URL: "", Err: errPermanent{fmt.Errorf(
				"certificate %s names no OCSP responder; pass a responder URL with --ocsp-url", name)}}
		}
		// SHA-384 CertIDs, because NVIDIA's verifier sends those to
		// NVIDIA's responder (OCSP_HASH_FUNCTION in local_gpu_verifier's
		// config.py, github.com/NVIDIA/nvtrust commit 028173093d43).
		body, err := ocsp.CreateRequest(r.Certificate, r.Issuer, &ocsp.RequestOptions{Hash: crypto.SHA384})
		if err != nil {
			return nil, &UpstreamError{URL: responder, Err: errPermanent{fmt.Errorf("encoding the OCSP request for %s: %w", name, err)}}
		}
		// The ocsp check is optional, so a responder that does not respond
		// may delay a verification by one request timeout in all, not by
		// one per attempt. Retries happen only within that time.
		ctx, cancel := context.WithTimeout(ctx, o.fetcher.opts.Timeout)
		defer cancel()
		resp, err := o.fetcher.do(ctx, httpRequest{
			method: http.MethodPost, url: responder, body: body, bodyType: "application/ocsp-request",
			contentTypes: []string{"application/ocsp-response"}, maxSize: maxOCSPResponseSize,
		})
		if err != nil {
			return nil, err
		}
		return ocspEntry(responder, resp.body, r)
	}}
}

// ocspEntry returns the cache entry of a response that responder sent
// about r's certificate, or the error that keeps it from the cache. A
// response that only the verifier can reject comes as an *uncachedEntry.
func ocspEntry(responder string, body []byte, r OCSPRequest) (*Entry, error) {
	fail := func(err error) error {
		return &UpstreamError{URL: responder, Status: http.StatusOK, Err: errPermanent{err}}
	}
	single, err := matchOCSP(body, r)
	var unusable *unusableOCSPError
	switch {
	case errors.As(err, &unusable):
		return nil, &uncachedEntry{entry: &Entry{URL: responder, Body: body}, err: fail(err)}
	case err != nil:
		return nil, fail(err)
	}
	// The SingleResponse about the certificate dates the entry. The others
	// may be about other certificates, with other periods.
	entry := &Entry{URL: responder, Body: body, NextUpdate: single.ValidUntil()}
	if err := checkOCSPSigner(body, r); err != nil {
		return nil, &uncachedEntry{entry: entry, err: fail(fmt.Errorf("the OCSP response about %q is not signed by its issuer or by a responder certificate it carries: %w",
			r.Certificate.Subject.String(), err))}
	}
	return entry, nil
}

// uncachedEntry is the error of a fetch whose entry the verifier must see
// but the cache must not keep: an OCSP response that its issuer did not
// sign, or one about the certificate that FindOCSPSingleResponse rejects.
// OCSP travels over plain HTTP, so anyone on the path can send one. The
// verifier rejects it, and a cached copy would go on rejecting every
// verification until its refresh time, even after the responder sends a
// correct response again.
type uncachedEntry struct {
	entry *Entry
	err   error
}

func (e *uncachedEntry) Error() string { return e.err.Error() }
func (e *uncachedEntry) Unwrap() error { return e.err }

// checkOCSPSigner checks that r's issuer signed the response, directly or
// through a responder certificate that the response carries and that
// CheckOCSPResponder accepts. It ignores validity periods, which the
// verifier checks at its verification time. A response signed by a
// delegated responder whose certificate comes only with other collateral
// fails here, so it is not cached, and the verifier still checks it.
// Of golang.org/x/crypto/ocsp's result it reads only the signature and the
// responder certificate, which cover the whole response. Its status fields
// come from the first SingleResponse with r's serial number, which may be
// about a certificate of another issuer.
func checkOCSPSigner(body []byte, r OCSPRequest) error {
	resp, err := ocsp.ParseResponseForCert(body, r.Certificate, nil)
	if err != nil {
		return err
	}
	if resp.Certificate == nil {
		return resp.CheckSignatureFrom(r.Issuer)
	}
	// golang.org/x/crypto/ocsp verified the signature under the
	// certificate that the response carries.
	return CheckOCSPResponder(resp.Certificate, r.Issuer, time.Time{})
}

// unusableOCSPError is a response about the requested certificate that
// FindOCSPSingleResponse rejects: its SingleResponses about it conflict or
// have a critical extension.
type unusableOCSPError struct{ err error }

func (e *unusableOCSPError) Error() string { return e.err.Error() }
func (e *unusableOCSPError) Unwrap() error { return e.err }

// matchOCSP checks that a fetched body is a successful OCSP response about
// r's certificate and returns the SingleResponse about it, so that an
// error response or a response about other certificates is never cached.
// It returns an *unusableOCSPError for a response about the certificate
// that FindOCSPSingleResponse rejects. The verifier checks the signature.
func matchOCSP(body []byte, r OCSPRequest) (OCSPSingleResponse, error) {
	singles, err := ParseOCSPResponse(body)
	if err != nil {
		return OCSPSingleResponse{}, fmt.Errorf("invalid OCSP response: %w", err)
	}
	single, err := FindOCSPSingleResponse(singles, r.Certificate, r.Issuer)
	switch {
	case errors.Is(err, ErrNoOCSPSingleResponse):
		return OCSPSingleResponse{}, fmt.Errorf("the OCSP response is not about certificate %q (serial %s): none of its %d SingleResponses names it with its issuer %q",
			r.Certificate.Subject.String(), r.Certificate.SerialNumber.Text(16), len(singles), r.Issuer.Subject.String())
	case err != nil:
		return OCSPSingleResponse{}, &unusableOCSPError{err: err}
	}
	return single, nil
}
