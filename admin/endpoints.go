package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/store"
)

type requesterKey struct{}

func withRequester(ctx context.Context, requester string) context.Context {
	return context.WithValue(ctx, requesterKey{}, requester)
}

func requester(ctx context.Context) string {
	s, _ := ctx.Value(requesterKey{}).(string)
	return s
}

// requestID returns the X-Request-Id header, which the server's route sets
// on every request before the admin handler runs.
func requestID(r *http.Request) string { return r.Header.Get("X-Request-Id") }

// change runs fn and appends the admin audit record it returns in one
// transaction, so that no change commits without its record. The record
// and the log line carry the request ID.
func (h *Handler) change(r *http.Request, fn func(tx store.Tx) (store.AuditRecord, error)) error {
	ctx := r.Context()
	err := h.cfg.Store.Tx(ctx, func(tx store.Tx) error {
		rec, err := fn(tx)
		if err != nil {
			return err
		}
		rec.Action = store.AuditAdmin
		rec.Requester = requester(ctx)
		rec.Verdict = "applied"
		rec.RequestID = requestID(r)
		_, err = tx.AppendAudit(ctx, rec)
		return err
	})
	if err == nil {
		h.cfg.Logger.Info("admin change", "request_id", requestID(r), "requester", requester(ctx),
			"method", r.Method, "path", r.URL.Path)
	}
	return err
}

func (h *Handler) putSecret(w http.ResponseWriter, r *http.Request) {
	path := r.PathValue("path")
	value, err := io.ReadAll(r.Body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	// An empty value is most often a file or pipe that was empty by
	// mistake, and it would replace the stored secret, which cannot be
	// read back, with bytes that no workload can use.
	if len(value) == 0 {
		h.writeError(w, r, badRequest("secret %s: the request body is empty, so there is no value to store; send the secret's bytes as the body (cloister secret put %s --file FILE), or delete the secret with DELETE %ssecrets/%s", path, path, PathPrefix, path))
		return
	}

	var info store.SecretInfo
	err = h.change(r, func(tx store.Tx) (store.AuditRecord, error) {
		info, err = tx.PutSecret(r.Context(), path, value)
		return store.AuditRecord{Resource: path, Reason: store.SecretPutReason(info.Version, "")}, err
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if info.Version == 1 {
		status = http.StatusCreated
	}
	writeJSON(w, status, info)
}

func (h *Handler) listSecrets(w http.ResponseWriter, r *http.Request) {
	list, err := h.cfg.Store.ListSecrets(r.Context(), r.URL.Query().Get("prefix"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SecretList{Secrets: nonNil(list)})
}

func (h *Handler) deleteSecret(w http.ResponseWriter, r *http.Request) {
	path := r.PathValue("path")
	err := h.change(r, func(tx store.Tx) (store.AuditRecord, error) {
		return store.AuditRecord{Resource: path, Reason: store.SecretDeleteReason("")}, tx.DeleteSecret(r.Context(), path)
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) putPolicy(w http.ResponseWriter, r *http.Request) {
	kind, name := store.PolicyKind(r.PathValue("kind")), r.PathValue("name")
	module, err := io.ReadAll(r.Body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	// Without a validator the service would store a module that fails
	// only when a request evaluates it, so it rejects every upload.
	if h.cfg.ValidatePolicy == nil {
		h.writeError(w, r, errNoPolicyValidator)
		return
	}
	if err := h.cfg.ValidatePolicy(kind, name, string(module)); err != nil {
		h.writeError(w, r, invalidRequest(fmt.Errorf("invalid %s policy %s: %w", kind, name, err)))
		return
	}

	var p store.Policy
	err = h.change(r, func(tx store.Tx) (store.AuditRecord, error) {
		p, err = tx.PutPolicy(r.Context(), kind, name, string(module))
		return store.AuditRecord{Resource: "policy:" + string(kind) + "/" + name, PolicyDigest: p.Digest,
			Reason: fmt.Sprintf("set policy version %d", p.Version)}, err
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if p.Version == 1 {
		status = http.StatusCreated
	}
	writeJSON(w, status, p)
}

func (h *Handler) getPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := h.cfg.Store.GetPolicy(r.Context(), store.PolicyKind(r.PathValue("kind")), r.PathValue("name"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (h *Handler) listPolicies(w http.ResponseWriter, r *http.Request) {
	kind := store.PolicyKind(r.URL.Query().Get("kind"))
	if kind != "" && kind != store.PolicyAttestation && kind != store.PolicyResource {
		h.writeError(w, r, badRequest("kind=%q is not a policy kind: use %s or %s, or leave kind out to list both", kind, store.PolicyAttestation, store.PolicyResource))
		return
	}
	list, err := h.cfg.Store.ListPolicies(r.Context(), kind)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	// The list carries digests; GET of one policy returns its module.
	for i := range list {
		list[i].Module = ""
	}
	writeJSON(w, http.StatusOK, PolicyList{Policies: nonNil(list)})
}

func (h *Handler) deletePolicy(w http.ResponseWriter, r *http.Request) {
	kind, name := store.PolicyKind(r.PathValue("kind")), r.PathValue("name")
	err := h.change(r, func(tx store.Tx) (store.AuditRecord, error) {
		return store.AuditRecord{Resource: "policy:" + string(kind) + "/" + name, Reason: "deleted policy"},
			tx.DeletePolicy(r.Context(), kind, name)
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ReferenceValueRequest is the body of POST /admin/v0/refvalues/{name}.
type ReferenceValueRequest struct {
	Value   string    `json:"value"`
	Expires time.Time `json:"expires,omitzero"`
}

func (h *Handler) addReferenceValue(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req ReferenceValueRequest
	if err := decodeJSONBody(r.Body, &req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.writeError(w, r, err)
			return
		}
		h.writeError(w, r, badRequest("reference value body must be JSON {\"value\": ..., \"expires\": RFC 3339 time}: %v", err))
		return
	}

	value, err := CheckReferenceValue(name, req.Value)
	if err != nil {
		h.writeError(w, r, invalidRequest(err))
		return
	}

	var rv store.ReferenceValue
	err = h.change(r, func(tx store.Tx) (store.AuditRecord, error) {
		var err error
		rv, err = tx.AddReferenceValue(r.Context(), store.ReferenceValue{Name: name, Value: value, Expires: req.Expires})
		return store.AuditRecord{Resource: "refvalue:" + name, Reason: "added value " + strconv.Quote(value)}, err
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rv)
}

func (h *Handler) listReferenceValues(w http.ResponseWriter, r *http.Request) {
	list, err := h.cfg.Store.ListReferenceValues(r.Context(), r.URL.Query().Get("name"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ReferenceValueList{ReferenceValues: nonNil(list)})
}

func (h *Handler) removeReferenceValue(w http.ResponseWriter, r *http.Request) {
	// Names and values are not checked here, so that values stored before
	// CheckReferenceValue existed can still be removed.
	name, value := r.PathValue("name"), r.URL.Query().Get("value")
	if value == "" && r.URL.Query().Has("value") {
		// An empty value, such as an unset shell variable, must not
		// remove every value of the name.
		h.writeError(w, r, badRequest("value is empty; give the value to remove, or leave out the value parameter to remove every value of %s", name))
		return
	}
	err := h.change(r, func(tx store.Tx) (store.AuditRecord, error) {
		if value == "" {
			return store.AuditRecord{Resource: "refvalue:" + name, Reason: "removed all values"},
				tx.RemoveReferenceValue(r.Context(), name, "")
		}
		removed, err := removeMatchingValues(r.Context(), tx, name, value)
		return store.AuditRecord{Resource: "refvalue:" + name, Reason: "removed " + removed}, err
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// removeMatchingValues removes every stored value of name that equals value
// without regard to case, and for a hex claim also with or without 0x. The
// default attestation policy compares values without regard to case, so a
// value that differs only in case, such as upper-case hex that older
// versions stored as typed, would still be accepted if it stayed. It
// returns the removed values as text for the audit record.
//
// Each DELETE names the stored value exactly, so the match does not depend
// on the collation of SQLite or PostgreSQL.
func removeMatchingValues(ctx context.Context, tx store.Tx, name, value string) (string, error) {
	want := normalizeReferenceValue(name, value)
	stored, err := tx.ListReferenceValues(ctx, name)
	if err != nil {
		return "", err
	}
	var removed []string
	for _, rv := range stored {
		if !strings.EqualFold(normalizeReferenceValue(name, rv.Value), want) {
			continue
		}
		if err := tx.RemoveReferenceValue(ctx, name, rv.Value); err != nil {
			return "", err
		}
		removed = append(removed, strconv.Quote(rv.Value))
	}
	if len(removed) == 0 {
		return "", fmt.Errorf("reference value %s = %q: %w", name, want, store.ErrNotFound)
	}
	return "value " + strings.Join(removed, ", "), nil
}

// maxAuditPage is the largest page GET /admin/v0/audit returns.
const maxAuditPage = 1000

func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request) {
	q := store.AuditQuery{Action: store.AuditAction(r.URL.Query().Get("action")), TokenID: r.URL.Query().Get("token_id"),
		Limit: maxAuditPage}
	switch q.Action {
	case "", store.AuditAttest, store.AuditRelease, store.AuditDeny, store.AuditAdmin:
	default:
		h.writeError(w, r, badRequest("action=%q is not an audit action: use %s, %s, %s or %s, or leave action out to list all",
			q.Action, store.AuditAttest, store.AuditRelease, store.AuditDeny, store.AuditAdmin))
		return
	}
	if v := r.URL.Query().Get("after"); v != "" {
		after, err := strconv.ParseInt(v, 10, 64)
		if err != nil || after < 0 {
			h.writeError(w, r, badRequest("after=%q is not a sequence number", v))
			return
		}
		q.AfterSeq = after
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		limit, err := strconv.Atoi(v)
		if err != nil || limit < 1 || limit > maxAuditPage {
			h.writeError(w, r, badRequest("limit=%q must be 1 to %d", v, maxAuditPage))
			return
		}
		q.Limit = limit
	}

	list, err := h.cfg.Store.ListAudit(r.Context(), q)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, AuditList{Records: nonNil(list)})
}

func (h *Handler) verifyAudit(w http.ResponseWriter, r *http.Request) {
	v, err := h.cfg.Store.VerifyAudit(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// auditHead returns the sequence number and hash of the last audit record
// as the head row stores them, without walking the chain, so that a
// monitor can poll it cheaply and keep it as a checkpoint.
func (h *Handler) auditHead(w http.ResponseWriter, r *http.Request) {
	head, err := h.cfg.Store.AuditHead(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, head)
}

// Response bodies of the list endpoints.
type (
	SecretList struct {
		Secrets []store.SecretInfo `json:"secrets"`
	}
	PolicyList struct {
		Policies []store.Policy `json:"policies"`
	}
	ReferenceValueList struct {
		ReferenceValues []store.ReferenceValue `json:"reference_values"`
	}
	AuditList struct {
		Records []store.AuditRecord `json:"records"`
	}
)

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}
