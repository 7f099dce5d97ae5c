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
package pccs

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/collateral"
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
		fmspc := r.URL.Query().Get("fmspc")
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
		q := collateral.Query{TEE: platform, At: time.Now()}
		h.serve(w, r, "pcs/"+platform+"/qe/identity", q, "application/json", "SGX-Enclave-Identity-Issuer-Chain")
	}
}

func (h *Handler) pckCRL(w http.ResponseWriter, r *http.Request) {
	ca := strings.ToLower(r.URL.Query().Get("ca"))
	if err := collateral.CheckPCKCA(ca); err != nil {
		http.Error(w, "ca parameter: "+err.Error(), http.StatusBadRequest)
		return
	}
	q := collateral.Query{TEE: "sgx", PCKCA: ca, At: time.Now()}
	h.serve(w, r, "pcs/pckcrl/"+ca, q, "application/pkix-crl", "SGX-PCK-CRL-Issuer-Chain")
}

func (h *Handler) rootCACRL(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, "pcs/rootcacrl", collateral.Query{TEE: "sgx", At: time.Now()}, "application/pkix-crl")
}

// serve writes the cached entry for key, fetching it first through the
// online source when it is absent and one is configured.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, key string, q collateral.Query, contentType string, chainHeaders ...string) {
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
		return
	case e == nil:
		http.Error(w, "collateral not cached: "+key, http.StatusNotFound)
		return
	}
	if chain := firstHeader(e); chain != "" {
		for _, name := range chainHeaders {
			w.Header().Set(name, encodeChainHeader(chain))
		}
	}
	w.Header().Set("Content-Type", contentType)
	if pastNextUpdate(e, time.Now()) {
		w.Header().Set("Warning", `110 - "stale collateral: past its nextUpdate"`)
	}
	w.Write(e.Body)
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
