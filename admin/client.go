package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// maxResponseBytes bounds the responses the client reads. The largest are
// audit pages of maxAuditPage records with fields of at most
// store.MaxAuditFieldSize bytes. A longer response, problem documents
// included, is an error that names the limit and the endpoint.
const maxResponseBytes = 64 << 20

// Client calls the admin API. Errors from the server are *Problem values.
type Client struct {
	// BaseURL is the service's URL, such as http://127.0.0.1:8080; the
	// client appends PathPrefix.
	BaseURL string
	// APIKey is sent as the bearer credential when not empty: the admin
	// key, or an admin token signed by a key in Config.TokenKeys. For
	// mutual TLS, set the certificate in HTTPClient's transport instead.
	APIKey string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// PutSecret stores value as a new version of the secret at path.
func (c *Client) PutSecret(ctx context.Context, path string, value []byte) (store.SecretInfo, error) {
	var info store.SecretInfo
	err := c.do(ctx, http.MethodPut, "secrets/"+escapePath(path), nil, "application/octet-stream", value, &info)
	return info, err
}

// ListSecrets lists the secrets whose path starts with prefix.
func (c *Client) ListSecrets(ctx context.Context, prefix string) ([]store.SecretInfo, error) {
	var list SecretList
	err := c.do(ctx, http.MethodGet, "secrets", url.Values{"prefix": {prefix}}, "", nil, &list)
	return list.Secrets, err
}

// DeleteSecret deletes every version of the secret at path.
func (c *Client) DeleteSecret(ctx context.Context, path string) error {
	return c.do(ctx, http.MethodDelete, "secrets/"+escapePath(path), nil, "", nil, nil)
}

// SetPolicy stores module as a new version of policy (kind, name).
func (c *Client) SetPolicy(ctx context.Context, kind store.PolicyKind, name, module string) (store.Policy, error) {
	var p store.Policy
	err := c.do(ctx, http.MethodPut, policyPath(kind, name), nil, "text/plain", []byte(module), &p)
	return p, err
}

// GetPolicy returns the latest version of policy (kind, name) with its
// module.
func (c *Client) GetPolicy(ctx context.Context, kind store.PolicyKind, name string) (store.Policy, error) {
	var p store.Policy
	err := c.do(ctx, http.MethodGet, policyPath(kind, name), nil, "", nil, &p)
	return p, err
}

// ListPolicies lists the latest version of each policy of kind (all kinds
// when empty), without modules.
func (c *Client) ListPolicies(ctx context.Context, kind store.PolicyKind) ([]store.Policy, error) {
	var list PolicyList
	err := c.do(ctx, http.MethodGet, "policies", url.Values{"kind": {string(kind)}}, "", nil, &list)
	return list.Policies, err
}

// DeletePolicy deletes every version of policy (kind, name).
func (c *Client) DeletePolicy(ctx context.Context, kind store.PolicyKind, name string) error {
	return c.do(ctx, http.MethodDelete, policyPath(kind, name), nil, "", nil, nil)
}

// AddReferenceValue accepts rv.Value for rv.Name until rv.Expires.
func (c *Client) AddReferenceValue(ctx context.Context, rv store.ReferenceValue) (store.ReferenceValue, error) {
	body, err := json.Marshal(ReferenceValueRequest{Value: rv.Value, Expires: rv.Expires})
	if err != nil {
		return store.ReferenceValue{}, err
	}
	var out store.ReferenceValue
	err = c.do(ctx, http.MethodPost, "refvalues/"+url.PathEscape(rv.Name), nil, "application/json", body, &out)
	return out, err
}

// ListReferenceValues lists the values of name, or of all names when empty.
func (c *Client) ListReferenceValues(ctx context.Context, name string) ([]store.ReferenceValue, error) {
	var list ReferenceValueList
	err := c.do(ctx, http.MethodGet, "refvalues", url.Values{"name": {name}}, "", nil, &list)
	return list.ReferenceValues, err
}

// RemoveReferenceValue removes value from name, or all of name's values
// when value is empty.
func (c *Client) RemoveReferenceValue(ctx context.Context, name, value string) error {
	var q url.Values
	if value != "" {
		q = url.Values{"value": {value}}
	}
	return c.do(ctx, http.MethodDelete, "refvalues/"+url.PathEscape(name), q, "", nil, nil)
}

// ListAudit returns one page of audit records matching q; the server caps
// a page at 1000 records.
func (c *Client) ListAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error) {
	params := url.Values{}
	if q.AfterSeq > 0 {
		params.Set("after", strconv.FormatInt(q.AfterSeq, 10))
	}
	if q.Action != "" {
		params.Set("action", string(q.Action))
	}
	if q.TokenID != "" {
		params.Set("token_id", q.TokenID)
	}
	if q.Limit > 0 {
		params.Set("limit", strconv.Itoa(q.Limit))
	}
	var list AuditList
	err := c.do(ctx, http.MethodGet, "audit", params, "", nil, &list)
	return list.Records, err
}

// VerifyAudit has the server walk the audit chain and returns the result.
func (c *Client) VerifyAudit(ctx context.Context) (store.AuditVerification, error) {
	var v store.AuditVerification
	err := c.do(ctx, http.MethodGet, "audit/verify", nil, "", nil, &v)
	return v, err
}

// AuditHead returns the sequence number and hash of the last audit
// record, which the server reads without verifying the chain.
func (c *Client) AuditHead(ctx context.Context) (store.AuditHead, error) {
	var head store.AuditHead
	err := c.do(ctx, http.MethodGet, "audit/head", nil, "", nil, &head)
	return head, err
}

func policyPath(kind store.PolicyKind, name string) string {
	return "policies/" + url.PathEscape(string(kind)) + "/" + url.PathEscape(name)
}

// escapePath escapes each segment of a resource path.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return strings.Join(parts, "/")
}

// do sends one request and decodes a JSON response into out (when not nil)
// or a problem document into a *Problem error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, contentType string, body []byte, out any) error {
	base, err := url.Parse(strings.TrimSuffix(c.BaseURL, "/") + PathPrefix + path)
	if err != nil {
		return fmt.Errorf("admin client: invalid server URL %q: %w", c.BaseURL, err)
	}
	if len(query) > 0 {
		base.RawQuery = query.Encode()
	}

	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base.String(), reader)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}

	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin client: %s %s: %w; no service listens there, so start cloister serve or pass its URL with --server or $"+ServerEnv, method, base.Redacted(), err)
	}
	if err != nil {
		return fmt.Errorf("admin client: %s %s: %w", method, base.Redacted(), err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("admin client: read response of %s %s: %w", method, base.Redacted(), err)
	}
	if len(respBody) > maxResponseBytes {
		return fmt.Errorf("admin client: response of %s %s (status %d) exceeds the limit of %d bytes (%d MiB); request less per call, such as a smaller page of audit records",
			method, base.Redacted(), resp.StatusCode, maxResponseBytes, maxResponseBytes>>20)
	}

	if resp.StatusCode >= 300 {
		p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if err := json.Unmarshal(respBody, p); err != nil || p.Status == 0 {
			p = &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(respBody))}
		}
		if id := resp.Header.Get("X-Request-Id"); kbs.IsRequestID(id) {
			p.RequestID = id
		}
		return p
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(respBody, out); err != nil {
		return fmt.Errorf("admin client: decode response of %s %s: %w", method, base.Redacted(), err)
	}
	return nil
}
