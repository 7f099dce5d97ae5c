package collateral

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// FetcherOptions configure the HTTP side of the online fetchers. The zero
// value is usable: every field has a default suited to AMD KDS, which
// throttles clients hard, and Intel PCS.
type FetcherOptions struct {
	// Client is the HTTP client; nil means a client with Timeout.
	Client *http.Client
	// Timeout bounds one HTTP request (default 30s).
	Timeout time.Duration
	// Retries is the number of retries after a failed attempt that may
	// succeed when repeated (default 3): a network error, HTTP 429, 500,
	// 502, 503 or 504.
	Retries int
	// Backoff is the first delay between attempts, doubled after each
	// (default 1s). A Retry-After header on 429 or 503 overrides it.
	Backoff time.Duration
	// MaxRetryAfter caps a server's Retry-After (default 2 minutes); a
	// longer wait fails the fetch instead of blocking the caller.
	MaxRetryAfter time.Duration
	// RequestsPerSecond and Burst set the per-host request budget
	// (default 2 per second with a burst of 4).
	RequestsPerSecond float64
	Burst             int
	// MaxResponseSize bounds a response body (default 4 MiB).
	MaxResponseSize int64
	// Logger receives retries and upstream errors (default slog.Default()).
	Logger *slog.Logger
}

func (o FetcherOptions) withDefaults() FetcherOptions {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Client.CheckRedirect == nil {
		client := *o.Client
		client.CheckRedirect = checkRedirect
		o.Client = &client
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 2 * time.Minute
	}
	if o.RequestsPerSecond <= 0 {
		o.RequestsPerSecond = 2
	}
	if o.Burst <= 0 {
		o.Burst = 4
	}
	if o.MaxResponseSize <= 0 {
		o.MaxResponseSize = 4 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// UpstreamError reports a failed fetch from a collateral service. Status is
// the last HTTP status, 0 when no response arrived. URL is empty when no
// request was sent, because no source URL is known.
type UpstreamError struct {
	URL    string
	Status int
	Err    error
}

func (e *UpstreamError) Error() string {
	if e.URL == "" && e.Err != nil {
		return e.Err.Error()
	}
	if e.Status != 0 {
		return fmt.Sprintf("fetching %s: HTTP %d: %v", e.URL, e.Status, e.Err)
	}
	return fmt.Sprintf("fetching %s: %v", e.URL, e.Err)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// upstreamCause returns the cause of err without the URL that an
// *UpstreamError or a *url.Error adds, so that a message names the URL
// once.
func upstreamCause(err error) error {
	var ue *UpstreamError
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Err != nil {
		err = urlErr.Err
	}
	return err
}

// ErrNotFound reports an item that the upstream service does not have
// (HTTP 404). It is not retried.
var ErrNotFound = errors.New("not found upstream")

// response is a fetched body with the headers the fetchers read.
type response struct {
	body   []byte
	header http.Header
}

// httpFetcher performs GET requests with retries, backoff and a per-host
// request budget.
type httpFetcher struct {
	opts    FetcherOptions
	mu      sync.Mutex
	budgets map[string]*rate.Limiter
}

func newHTTPFetcher(opts FetcherOptions) *httpFetcher {
	return &httpFetcher{opts: opts.withDefaults(), budgets: map[string]*rate.Limiter{}}
}

func (f *httpFetcher) budget(host string) *rate.Limiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.budgets[host]
	if !ok {
		l = rate.NewLimiter(rate.Limit(f.opts.RequestsPerSecond), f.opts.Burst)
		f.budgets[host] = l
	}
	return l
}

// get fetches rawURL, accepting only the listed content types by media
// type, ignoring parameters, or any type when none is listed. It retries
// network errors and the statuses that transientStatus lists, honoring
// Retry-After.
func (f *httpFetcher) get(ctx context.Context, rawURL string, contentTypes ...string) (*response, error) {
	return f.do(ctx, httpRequest{method: http.MethodGet, url: rawURL, contentTypes: contentTypes})
}

// httpRequest is one request that do sends, with its retries.
type httpRequest struct {
	method, url string
	// body is sent with bodyType as its Content-Type, when set.
	body     []byte
	bodyType string
	// contentTypes are the accepted response media types, and none means
	// any.
	contentTypes []string
	// maxSize bounds the response body below FetcherOptions.MaxResponseSize
	// when positive.
	maxSize int64
}

// do sends r as get describes, retrying the same body.
func (f *httpFetcher) do(ctx context.Context, r httpRequest) (*response, error) {
	rawURL := r.url
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &UpstreamError{URL: rawURL, Err: err}
	}
	delay := f.opts.Backoff
	var last error
	var lastStatus int
	for attempt := 0; attempt <= f.opts.Retries; attempt++ {
		if attempt > 0 {
			f.opts.Logger.Warn("collateral fetch retry", "url", rawURL, "attempt", attempt, "delay", delay, "error", last)
			if err := sleep(ctx, delay); err != nil {
				// The context's error alone would hide why the attempts
				// failed, such as a refused connection.
				return nil, &UpstreamError{URL: rawURL, Status: lastStatus,
					Err: fmt.Errorf("%w before attempt %d, after attempt %d failed: %v", err, attempt+1, attempt, upstreamCause(last))}
			}
			delay *= 2
		}
		if err := f.budget(u.Host).Wait(ctx); err != nil {
			return nil, &UpstreamError{URL: rawURL, Err: err}
		}
		started := time.Now()
		resp, retryAfter, err := f.once(ctx, r)
		fetchLatency.WithLabelValues(u.Host).Observe(time.Since(started).Seconds())
		if err == nil {
			return resp, nil
		}
		upstreamErrors.WithLabelValues(u.Host).Inc()
		last = err
		var ue *UpstreamError
		if errors.As(err, &ue) {
			lastStatus = ue.Status
		}
		if !retryable(err) {
			return nil, err
		}
		if retryAfter > 0 {
			if retryAfter > f.opts.MaxRetryAfter {
				return nil, &UpstreamError{URL: rawURL, Status: lastStatus,
					Err: fmt.Errorf("server asks to retry after %s, more than the %s limit", retryAfter, f.opts.MaxRetryAfter)}
			}
			delay = retryAfter
		}
	}
	return nil, last
}

// once performs one request. It returns the Retry-After delay of a 429 or
// 503 response.
func (f *httpFetcher) once(ctx context.Context, r httpRequest) (*response, time.Duration, error) {
	rawURL := r.url
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, rawURL, body)
	if err != nil {
		return nil, 0, &UpstreamError{URL: rawURL, Err: err}
	}
	if r.bodyType != "" {
		req.Header.Set("Content-Type", r.bodyType)
	}
	resp, err := f.opts.Client.Do(req)
	if err != nil {
		return nil, 0, &UpstreamError{URL: rawURL, Err: err}
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		var retryAfter time.Duration
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		cause := fmt.Errorf("unexpected status %s", resp.Status)
		if resp.StatusCode == http.StatusNotFound {
			cause = ErrNotFound
		}
		return nil, retryAfter, &UpstreamError{URL: rawURL, Status: resp.StatusCode, Err: cause}
	}
	if err := checkContentType(resp.Header.Get("Content-Type"), r.contentTypes); err != nil {
		return nil, 0, &UpstreamError{URL: rawURL, Status: resp.StatusCode, Err: errPermanent{err}}
	}
	limit := f.opts.MaxResponseSize
	if r.maxSize > 0 && r.maxSize < limit {
		limit = r.maxSize
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, 0, &UpstreamError{URL: rawURL, Status: resp.StatusCode, Err: err}
	}
	if int64(len(data)) > limit {
		return nil, 0, &UpstreamError{URL: rawURL, Status: resp.StatusCode,
			Err: errPermanent{fmt.Errorf("response larger than %d bytes", limit)}}
	}
	return &response{body: data, header: resp.Header}, 0, nil
}

// maxRedirects bounds the redirects that one request follows.
const maxRedirects = 5

// checkRedirect is the redirect policy of a client that sets none. It
// rejects a redirect from https to another scheme, because the collateral
// would then travel unauthenticated. Signatures cover most collateral, but
// not its freshness, so a downgraded response could replace a current CRL
// with an older one.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errPermanent{fmt.Errorf("stopped after %d redirects", len(via))}
	}
	from := via[len(via)-1].URL
	if from.Scheme == "https" && req.URL.Scheme != "https" {
		return errPermanent{fmt.Errorf("redirect from %s to %s leaves HTTPS; set the upstream URL to an HTTPS address that serves the item",
			from.Redacted(), req.URL.Redacted())}
	}
	return nil
}

// errPermanent marks a failure that a retry cannot fix.
type errPermanent struct{ error }

func (e errPermanent) Unwrap() error { return e.error }

// retryable reports whether a repeated attempt may succeed after err: a
// network error, or a response with a status that transientStatus lists.
func retryable(err error) bool {
	var p errPermanent
	if errors.As(err, &p) || errors.Is(err, ErrNotFound) || errors.Is(err, context.Canceled) {
		return false
	}
	var ue *UpstreamError
	if errors.As(err, &ue) && ue.Status != 0 {
		return transientStatus(ue.Status)
	}
	return true
}

// transientStatus reports whether an HTTP status reports a condition that
// may pass: throttling (429), an internal error (500), or a gateway or
// overloaded server (502, 503, 504). Other statuses, such as 501 Not
// Implemented and 505 HTTP Version Not Supported, repeat on every attempt.
func transientStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func checkContentType(header string, allowed []string) error {
	if len(allowed) == 0 {
		return nil
	}
	mediaType, _, err := mime.ParseMediaType(header)
	if err != nil {
		return fmt.Errorf("invalid Content-Type %q", header)
	}
	for _, a := range allowed {
		if strings.EqualFold(mediaType, a) {
			return nil
		}
	}
	return fmt.Errorf("unexpected Content-Type %q, expected %s", mediaType, strings.Join(allowed, " or "))
}

// parseRetryAfter reads a Retry-After value in seconds or as an HTTP date.
// A number of seconds too large for a time.Duration returns the maximum
// duration, so that the caller's limit rejects it instead of an overflow
// turning it into a short or negative delay.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	text := strings.TrimSpace(v)
	secs, err := strconv.ParseInt(text, 10, 64)
	switch {
	case err == nil && secs > int64(math.MaxInt64/time.Second):
		return math.MaxInt64
	case err == nil && secs >= 0:
		return time.Duration(secs) * time.Second
	case errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(text, "-"):
		return math.MaxInt64
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
