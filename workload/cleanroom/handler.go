package cleanroom

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/cloister-dev/cloister/workload"
)

// API paths of the clean room.
const (
	PathStatus = "/v1/status"
	PathTables = "/v1/tables/"
	PathResult = "/v1/result"
)

// Status is the response of GET /v1/status.
type Status struct {
	Manifest workload.Digest `json:"manifest_sha256"`
	Name     string          `json:"name"`
	// Missing lists the tables not uploaded yet, as "table (party name)".
	Missing []string `json:"missing"`
}

// UploadResponse is the response of PUT /v1/tables/{name}.
type UploadResponse struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// Handler returns the clean room's HTTP API. It must run behind
// workload.Serve, which identifies the calling party:
//
//	GET /v1/status          every party: manifest digest and missing tables
//	PUT /v1/tables/{name}   the table's party: the CSV file, once
//	GET /v1/result          recipients: the result, after every upload
func Handler(room *Room, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{room: room, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, h.status)
	mux.HandleFunc("PUT "+PathTables+"{name}", h.upload)
	mux.HandleFunc("GET "+PathResult, h.result)
	return mux
}

type handler struct {
	room *Room
	log  *slog.Logger
}

func (h *handler) party(w http.ResponseWriter, r *http.Request) (string, bool) {
	p, ok := workload.PartyFromContext(r.Context())
	if !ok {
		h.fail(w, r, "", errors.New("the request carries no party identity; the clean room must run behind workload.Serve"))
		return "", false
	}
	return p.Name, true
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.party(w, r); !ok {
		return
	}
	m, d := h.room.Manifest()
	workload.WriteJSON(w, http.StatusOK, Status{Manifest: d, Name: m.Name, Missing: h.room.Missing()})
}

func (h *handler) upload(w http.ResponseWriter, r *http.Request) {
	party, ok := h.party(w, r)
	if !ok {
		return
	}
	table := r.PathValue("name")
	body := &stallLimitedReader{r: r.Body, rc: http.NewResponseController(w), stall: uploadStallTimeout}
	rows, err := h.room.Upload(r.Context(), party, table, body)
	if err != nil {
		h.fail(w, r, party, err)
		return
	}
	workload.WriteJSON(w, http.StatusOK, UploadResponse{Table: table, Rows: rows})
}

func (h *handler) result(w http.ResponseWriter, r *http.Request) {
	party, ok := h.party(w, r)
	if !ok {
		return
	}
	res, err := h.room.Result(party)
	var werr error
	if err != nil {
		werr = h.fail(w, r, party, err)
	} else {
		werr = workload.WriteJSON(w, http.StatusOK, res)
	}
	// Only a response that reached the connection counts as delivered,
	// so that a recipient whose response was lost can ask again.
	if werr == nil {
		werr = http.NewResponseController(w).Flush()
	}
	if werr != nil {
		h.log.Warn("cleanroom: sending the result failed", "party", party, "err", werr)
		return
	}
	h.room.MarkDelivered(party)
}

// fail logs a rejected request, sends its error with a status code that
// matches the error, and returns the write error.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, party string, err error) error {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotAllowed):
		code = http.StatusForbidden
	case errors.Is(err, ErrWaiting), errors.Is(err, ErrClosed):
		code = http.StatusConflict
	case errors.Is(err, ErrInvalidInput):
		code = http.StatusBadRequest
	}
	h.log.Warn("cleanroom: request rejected", "method", r.Method, "path", r.URL.Path, "party", party, "status", code, "err", err)
	return workload.WriteError(w, code, err)
}

// uploadStallTimeout is how long an upload may send no data, so that a
// party that stops sending does not keep its table marked as uploading,
// and its connection and buffer, for good. The body is read in full
// before the room's one database connection is taken, so a slow upload
// does not delay the other parties' uploads.
const uploadStallTimeout = 30 * time.Second

// stallLimitedReader moves the connection's read deadline stall into the
// future before each read, so that a body that stops arriving fails the
// upload while a slow but steady one completes.
type stallLimitedReader struct {
	r     io.Reader
	rc    *http.ResponseController
	stall time.Duration
}

func (s *stallLimitedReader) Read(p []byte) (int, error) {
	if err := s.rc.SetReadDeadline(time.Now().Add(s.stall)); err != nil {
		return 0, err
	}
	return s.r.Read(p)
}
