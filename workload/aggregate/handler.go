package aggregate

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/cloister-dev/cloister/workload"
)

// The HTTP API, served over RA-TLS (see Serve):
//
//	GET  /v1/status                 {"round", "contributors", "manifest_sha256"}
//	POST /v1/rounds/{n}/updates     body {"update": [float64...]}
//	POST /v1/rounds/{n}/close       the Result, or 409 with too few parties
//	GET  /v1/rounds/{n}/aggregate   the Result of a closed round
//
// Errors are JSON objects {"error": message}.

// UpdateRequest is the body of POST /v1/rounds/{n}/updates.
type UpdateRequest struct {
	Update []float64 `json:"update"`
}

// Status is the body of GET /v1/status.
type Status struct {
	Round        uint64 `json:"round"`
	Contributors int    `json:"contributors"`
	MinClients   int    `json:"min_clients"`
	Dimension    int    `json:"dimension"`
	// Manifest is the digest that HOST_DATA carries.
	Manifest workload.Digest `json:"manifest_sha256"`
}

// Handler serves the aggregation API for agg. It identifies the caller
// with workload.PartyFromContext, which workload.Serve fills in.
type Handler struct {
	agg      *Aggregator
	manifest workload.Digest
	log      *slog.Logger
	mux      *http.ServeMux
}

// NewHandler returns the API handler of agg, whose manifest has the
// digest manifest; log nil means slog.Default().
func NewHandler(agg *Aggregator, manifest workload.Digest, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{agg: agg, manifest: manifest, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /v1/status", h.status)
	h.mux.HandleFunc("POST /v1/rounds/{round}/updates", h.submit)
	h.mux.HandleFunc("POST /v1/rounds/{round}/close", h.close)
	h.mux.HandleFunc("GET /v1/rounds/{round}/aggregate", h.result)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	round, n := h.agg.Status()
	m := h.agg.Manifest()
	workload.WriteJSON(w, http.StatusOK, Status{Round: round, Contributors: n, MinClients: m.MinClients,
		Dimension: m.Dimension, Manifest: h.manifest})
}

func (h *Handler) submit(w http.ResponseWriter, r *http.Request) {
	party, round, ok := h.request(w, r)
	if !ok {
		return
	}
	// About 25 bytes per JSON number plus the envelope.
	limit := int64(h.agg.Manifest().Dimension)*32 + 1024
	// NOTE: net/http's read buffers still hold the update's JSON text
	// until they are reused; only the decoded vector is zeroed.
	// The decoder stops past the manifest's dimension, so a body of short
	// numbers cannot allocate more than one update.
	update, err := workload.DecodeVector(http.MaxBytesReader(w, r.Body, limit), "update", h.agg.Manifest().Dimension)
	if err != nil {
		clear(update)
		h.log.Info("aggregate: update body rejected", "party", party, "round", round, "error", err)
		if workload.IsBodyTooLarge(err) {
			workload.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the update body is larger than %d bytes, the limit for %d numbers; send {\"update\": [numbers]} with shorter numbers", limit, h.agg.Manifest().Dimension))
			return
		}
		workload.WriteError(w, http.StatusBadRequest, fmt.Errorf("invalid update body: %v: send {\"update\": [numbers]} with %d numbers", err, h.agg.Manifest().Dimension))
		return
	}
	n, err := h.agg.submit(round, party, update)
	if err != nil {
		h.log.Info("aggregate: update rejected", "party", party, "round", round, "error", err)
		workload.WriteError(w, statusOf(err), err)
		return
	}
	h.log.Info("aggregate: update accepted", "party", party, "round", round)
	workload.WriteJSON(w, http.StatusAccepted, map[string]any{"round": round, "contributors": n})
}

func (h *Handler) close(w http.ResponseWriter, r *http.Request) {
	party, round, ok := h.request(w, r)
	if !ok {
		return
	}
	res, err := h.agg.Close(round)
	if err != nil {
		h.log.Info("aggregate: close rejected", "party", party, "round", round, "error", err)
		workload.WriteError(w, statusOf(err), err)
		return
	}
	h.log.Info("aggregate: round closed", "party", party, "round", round, "contributors", res.Contributors)
	workload.WriteJSON(w, http.StatusOK, res)
}

func (h *Handler) result(w http.ResponseWriter, r *http.Request) {
	_, round, ok := h.request(w, r)
	if !ok {
		return
	}
	res, err := h.agg.Result(round)
	if err != nil {
		workload.WriteError(w, statusOf(err), err)
		return
	}
	workload.WriteJSON(w, http.StatusOK, res)
}

// request identifies the party and parses the round number. Only the
// manifest's parties may close rounds and read aggregates.
func (h *Handler) request(w http.ResponseWriter, r *http.Request) (party string, round uint64, ok bool) {
	p, ok := workload.PartyFromContext(r.Context())
	if !ok || !h.agg.parties[p.Name] {
		workload.WriteError(w, http.StatusForbidden, fmt.Errorf("%w: serve the handler with workload.Serve, which identifies the party by its TLS client key", ErrUnknownParty))
		return "", 0, false
	}
	party = p.Name
	round, err := strconv.ParseUint(r.PathValue("round"), 10, 64)
	if r.PathValue("round") != "" && (err != nil || round == 0) {
		workload.WriteError(w, http.StatusBadRequest, fmt.Errorf("invalid round %q: use a positive integer", r.PathValue("round")))
		return "", 0, false
	}
	return party, round, true
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrUnknownParty):
		return http.StatusForbidden
	case errors.Is(err, ErrInvalidUpdate):
		return http.StatusBadRequest
	case errors.Is(err, ErrRoundNotClosed):
		return http.StatusNotFound
	case errors.Is(err, ErrWrongRound), errors.Is(err, ErrDuplicate), errors.Is(err, ErrTooFewClients):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// APIError is an error response of the workload.
type APIError = workload.APIError
