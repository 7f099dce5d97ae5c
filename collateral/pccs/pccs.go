// Package pccs serves cached Intel DCAP collateral under the paths of the
// Intel PCCS API v4, so that existing DCAP tooling (the quote provider
// library's PCCS_URL, go-tdx-guest, Trustee) can use a Cloister service as its
// collateral cache.
//
// It serves TCB Info, QE Identity and TD QE Identity, the PCK CRL and the
// Root CA CRL, with the issuer chains in the same response headers as Intel
// PCS. It does not serve PCK certificates: Cloister reads them from the
// quote's certification data. An item that is not cached is fetched through
// the Online source when one is configured; otherwise the response is 404.
//
// It serves the standard TCB Info and QE Identity that Intel PCS returns
// by default, and the PCK CRL in PEM (the default) or DER, as the encoding
// parameter requests. A request for early TCB recovery collateral
// (update=early), for an older TCB evaluation data number, or with a
// parameter it does not know gets 400 with the parameter and its value.
package pccs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/printable"
)

// Handler serves PCCS API requests from a collateral cache.
type Handler struct {
	// Backend holds the cached collateral, keyed as collateral.Online
	// stores it.
	Backend collateral.Backend
	// Online, when set, fetches items that are not cached.
	Online *collateral.Online
	// Logger receives lookup failures; nil means slog.Default().
	Logger *slog.Logger

	// crlMu guards crls, the PCK CRL of each cache key in DER and PEM,
	// converted once per cached body.
	crlMu sync.Mutex
	crls  map[string]*convertedCRL
}

// convertedCRL is a cached PCK CRL body in both encodings that the PCK CRL
// endpoint serves.
type convertedCRL struct {
	bodyDigest [sha256.Size]byte
	der        []byte
	pem        []byte
}

// Mux returns a ServeMux with the PCCS v4 routes.
func (h *Handler) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, platform := range []string{"sgx", "tdx"} {
		mux.HandleFunc("GET /"+platform+"/certification/v4/tcb", h.tcbInfo(platform))
		mux.HandleFunc("GET /"+platform+"/certification/v4/qe/identity", h.qeIdentity(platform))
	}
	mux.HandleFunc("GET /sgx/certification/v4/pckcrl", h.pckCRL)
	mux.HandleFunc("GET /sgx/certification/v4/rootcacrl", h.rootCACRL)
	mux.HandleFunc("GET /sgx/certification/v4/pckcert", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "PCK certificates are not served: Cloister reads them from the quote's certification data", http.StatusNotFound)
	})
	return mux
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

func (h *Handler) tcbInfo(platform string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		params, ok := checkParams(w, r, "fmspc", "update", "tcbEvaluationDataNumber")
		if !ok || !checkStandardUpdate(w, params) {
			return
		}
		fmspc := params.Get("fmspc")
		if err := collateral.CheckFMSPC(fmspc); err != nil {
			http.Error(w, "fmspc parameter: "+err.Error(), http.StatusBadRequest)
			return
		}
		q := collateral.Query{TEE: platform, FMSPC: strings.ToUpper(fmspc), At: time.Now()}
		h.serve(w, r, "pcs/"+platform+"/tcb/"+strings.ToUpper(fmspc), q, "application/json",
			"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain")
	}
}

func (h *Handler) qeIdentity(platform string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		params, ok := checkParams(w, r, "update", "tcbEvaluationDataNumber")
		if !ok || !checkStandardUpdate(w, params) {
			return
		}
		q := collateral.Query{TEE: platform, At: time.Now()}
		h.serve(w, r, "pcs/"+platform+"/qe/identity", q, "application/json", "SGX-Enclave-Identity-Issuer-Chain")
	}
}

func (h *Handler) pckCRL(w http.ResponseWriter, r *http.Request) {
	params, ok := checkParams(w, r, "ca", "encoding")
	if !ok {
		return
	}
	ca := strings.ToLower(params.Get("ca"))
	if err := collateral.CheckPCKCA(ca); err != nil {
		http.Error(w, "ca parameter: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Intel PCS v4 returns the PCK CRL in PEM unless encoding=der.
	// NOTE: Intel's PCCS (QuoteGeneration/pccs of
	// SGXDataCenterAttestationPrimitives) responds to a request without
	// encoding=der with the DER in hexadecimal instead. This server follows
	// Intel PCS, so a client that expects the hexadecimal form gets PEM.
	encoding := strings.ToLower(params.Get("encoding"))
	if encoding != "" && encoding != "pem" && encoding != "der" {
		http.Error(w, fmt.Sprintf("encoding parameter %s is invalid: Intel PCS serves the PCK CRL in pem and der; "+
			"set encoding=der or encoding=pem, or omit it for pem", quoteValue(params.Get("encoding"))), http.StatusBadRequest)
		return
	}
	key := "pcs/pckcrl/" + ca
	e, ok := h.lookup(w, r, key, collateral.Query{TEE: "sgx", PCKCA: ca, At: time.Now()})
	if !ok {
		return
	}
	crl, err := h.convertCRL(key, e.Body)
	if err != nil {
		h.logger().Error("PCCS cached PCK CRL is invalid", "key", key, "error", err)
		http.Error(w, "the cached PCK CRL "+key+" is invalid: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if encoding == "der" {
		write(w, e, "application/pkix-crl", crl.der, "SGX-PCK-CRL-Issuer-Chain")
		return
	}
	write(w, e, "application/x-pem-file", crl.pem, "SGX-PCK-CRL-Issuer-Chain")
}

// convertCRL returns the PCK CRL that body of the cache entry key contains,
// in DER and PEM. It parses body only when its SHA-256 differs from that of
// the body last converted for key, so requests between two cache updates
// share one conversion.
func (h *Handler) convertCRL(key string, body []byte) (*convertedCRL, error) {
	digest := sha256.Sum256(body)
	h.crlMu.Lock()
	crl := h.crls[key]
	h.crlMu.Unlock()
	if crl != nil && crl.bodyDigest == digest {
		return crl, nil
	}

	der, err := crlDER(body)
	if err != nil {
		return nil, err
	}
	// The clone keeps the cache from holding on to the whole entry body.
	der = bytes.Clone(der)
	crl = &convertedCRL{bodyDigest: digest, der: der, pem: pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})}
	h.crlMu.Lock()
	if h.crls == nil {
		h.crls = map[string]*convertedCRL{}
	}
	h.crls[key] = crl
	h.crlMu.Unlock()
	return crl, nil
}

func (h *Handler) rootCACRL(w http.ResponseWriter, r *http.Request) {
	if _, ok := checkParams(w, r); !ok {
		return
	}
	h.serve(w, r, "pcs/rootcacrl", collateral.Query{TEE: "sgx", At: time.Now()}, "application/pkix-crl")
}

// quoteValue quotes a value from the request for an error response, cut
// to 128 bytes so that a long query does not come back at full length.
func quoteValue(v string) string { return printable.Quote(v, 128) }

// paramName returns a parameter name for an error response: as it is when
// it is a short word of letters and digits, such as every name of Intel's
// API, and quoted and cut otherwise.
func paramName(name string) string {
	if len(name) > 0 && len(name) <= 64 && strings.IndexFunc(name, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) < 0 {
		return name
	}
	return quoteValue(name)
}

// checkParams parses the query of r and writes a 400 response unless every
// parameter is one of accepted and appears once. A parameter this server
// does not know could request other collateral than the one it serves, so
// it is rejected rather than ignored.
func checkParams(w http.ResponseWriter, r *http.Request, accepted ...string) (url.Values, bool) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		http.Error(w, fmt.Sprintf("invalid query %s: %v", quoteValue(r.URL.RawQuery), err), http.StatusBadRequest)
		return nil, false
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		values := params[name]
		switch {
		case !slices.Contains(accepted, name):
			expected := "no parameters"
			if len(accepted) > 0 {
				expected = "only " + strings.Join(accepted, ", ")
			}
			http.Error(w, fmt.Sprintf("query parameter %s=%s is not supported: %s accepts %s; remove it",
				paramName(name), quoteValue(values[0]), r.URL.Path, expected), http.StatusBadRequest)
			return nil, false
		case len(values) > 1:
			http.Error(w, fmt.Sprintf("query parameter %s appears %d times; pass it once", paramName(name), len(values)),
				http.StatusBadRequest)
			return nil, false
		}
	}
	return params, true
}

// checkStandardUpdate writes a 400 response and returns false unless the
// request is for the standard TCB Info or QE Identity: the one that Intel
// PCS returns without update and tcbEvaluationDataNumber parameters, and
// that collateral.PCS fetches and caches.
func checkStandardUpdate(w http.ResponseWriter, params url.Values) bool {
	if number, ok := params["tcbEvaluationDataNumber"]; ok {
		http.Error(w, fmt.Sprintf("tcbEvaluationDataNumber parameter %s is not served: this PCCS caches only the "+
			"TCB evaluation data that Intel PCS serves by default; omit the parameter, or request that number from Intel PCS", quoteValue(number[0])),
			http.StatusBadRequest)
		return false
	}
	switch update := params.Get("update"); strings.ToLower(update) {
	case "", "standard":
		return true
	case "early":
		http.Error(w, fmt.Sprintf("update parameter %s is not served: this PCCS caches only the standard collateral "+
			"that Intel PCS serves by default; omit update or set update=standard, or request early collateral from Intel PCS", quoteValue(update)),
			http.StatusBadRequest)
	default:
		http.Error(w, fmt.Sprintf("update parameter %s is invalid: Intel PCS accepts standard and early; "+
			"omit update or set update=standard", quoteValue(update)), http.StatusBadRequest)
	}
	return false
}

// crlDER returns the DER of the single CRL in body, which contains it in
// DER or PEM as the upstream sent it.
func crlDER(body []byte) ([]byte, error) {
	s := &collateral.Set{}
	if n, reason := s.AddBytes("", body); n == 0 {
		return nil, errors.New(reason)
	}
	crls := s.OfKind(collateral.KindCRL)
	if len(crls) != 1 || len(s.Items) != 1 {
		return nil, fmt.Errorf("it contains %d items of which %d are CRLs, expected one CRL", len(s.Items), len(crls))
	}
	return crls[0].Raw, nil
}

// serve writes the cached entry for key as it is stored.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, key string, q collateral.Query, contentType string, chainHeaders ...string) {
	e, ok := h.lookup(w, r, key, q)
	if !ok {
		return
	}
	write(w, e, contentType, e.Body, chainHeaders...)
}

// lookup returns the cached entry for key, fetching it first through the
// online source when it is absent or past its NextUpdate and one is
// configured. It writes the error response and returns false when no entry
// can be served.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request, key string, q collateral.Query) (*collateral.Entry, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	e, err := h.Backend.Get(ctx, key)
	if err == nil && h.Online != nil && (e == nil || pastNextUpdate(e, time.Now())) {
		if _, ferr := h.Online.Collateral(ctx, q); ferr != nil {
			h.logger().Warn("PCCS fetch failed", "key", key, "error", ferr)
		}
		e, err = h.Backend.Get(ctx, key)
	}
	switch {
	case err != nil:
		h.logger().Error("PCCS cache lookup failed", "key", key, "error", err)
		http.Error(w, "collateral cache unavailable", http.StatusServiceUnavailable)
		return nil, false
	case e == nil:
		http.Error(w, "collateral not cached: "+key, http.StatusNotFound)
		return nil, false
	}
	return e, true
}

// write sends body, the content of entry e, with e's issuer chain under
// each of chainHeaders and a Warning when e is past its NextUpdate.
func write(w http.ResponseWriter, e *collateral.Entry, contentType string, body []byte, chainHeaders ...string) {
	if chain := firstHeader(e); chain != "" {
		for _, name := range chainHeaders {
			w.Header().Set(name, encodeChainHeader(chain))
		}
	}
	w.Header().Set("Content-Type", contentType)
	if pastNextUpdate(e, time.Now()) {
		w.Header().Set("Warning", `110 - "stale collateral: past its nextUpdate"`)
	}
	w.Write(body)
}

func firstHeader(e *collateral.Entry) string {
	for _, v := range e.Headers {
		return v
	}
	return ""
}

// pastNextUpdate reports whether e is past the NextUpdate that it stores.
func pastNextUpdate(e *collateral.Entry, now time.Time) bool {
	return !e.NextUpdate.IsZero() && now.After(e.NextUpdate)
}

// encodeChainHeader percent-encodes a PEM issuer chain as Intel PCS does,
// with spaces as %20. url.QueryEscape writes them as '+', which decoders
// that follow RFC 3986 rather than HTML form encoding leave as a '+', so
// that "-----BEGIN+CERTIFICATE-----" no longer parses as PEM. A literal '+'
// of the base64 text is already %2B, so the replacement changes only spaces.
func encodeChainHeader(chain string) string {
	return strings.ReplaceAll(url.QueryEscape(chain), "+", "%20")
}
