package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/cloister-dev/cloister/store"
)

// rejectedChangeAuditTimeout bounds the audit append of a rejected change,
// which runs after the request's own work and must not hang its response.
const rejectedChangeAuditTimeout = 5 * time.Second

// auditRejectedChange appends an admin record for a change request (any
// method but GET and HEAD) that the API rejected or that failed, so that
// the audit log shows attempted changes as well as applied ones. Callers
// pass only requests with a known requester: an authenticated one, or an
// admin token whose signature verified but whose rules rejected the
// request. status is the admin API's status for the error, also on the
// Trustee endpoints, which send 401 for every error. The verdict is
// "rejected" below status 500 and "failed" from 500 on, and the reason is
// the detail that the client received. A failed append is logged, because
// the response goes out regardless.
func (h *Handler) auditRejectedChange(r *http.Request, status int, detail string) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return
	}
	verdict := "rejected"
	if status >= http.StatusInternalServerError {
		verdict = "failed"
	}
	rec := store.AuditRecord{Action: store.AuditAdmin, Requester: requester(r.Context()), Verdict: verdict,
		Resource: r.Method + " " + r.URL.Path, Reason: detail, RequestID: requestID(r)}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), rejectedChangeAuditTimeout)
	defer cancel()
	if _, err := h.cfg.Store.AppendAuditGrouped(ctx, rec); err != nil {
		h.cfg.Logger.Error("admin: audit append of a rejected change failed", "request_id", requestID(r),
			"method", r.Method, "path", r.URL.Path, "error", err)
	}
}
