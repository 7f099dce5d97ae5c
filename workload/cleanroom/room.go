package cleanroom

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/cloister-dev/cloister/workload"
)

// DefaultMaxUploadBytes bounds one uploaded CSV file when Options sets no
// limit.
const DefaultMaxUploadBytes = 1 << 30

// Errors that a Room returns; the handler maps them to HTTP status codes.
var (
	// ErrNotAllowed rejects a party acting outside its role: uploading
	// another party's table or reading a result it does not receive.
	ErrNotAllowed = errors.New("not allowed by the manifest")
	// ErrWaiting rejects a result request before every table is uploaded.
	ErrWaiting = errors.New("the query has not run")
	// ErrClosed rejects an upload after the query ran or the room closed.
	ErrClosed = errors.New("the clean room is closed")
	// ErrInvalidInput rejects an upload that does not match its schema.
	ErrInvalidInput = errors.New("invalid input")
)

// Options configure a Room.
type Options struct {
	// ResultKey, when set, is the HMAC-SHA256 key of the result's mac, so
	// that a recipient who holds the same key can check that a result
	// came from a workload that the key broker released the key to. Close
	// zeroes it.
	ResultKey []byte
	// MaxUploadBytes bounds one uploaded CSV file; zero means
	// DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// Log receives uploads, the run and the erasure; nil means
	// slog.Default().
	Log *slog.Logger
}

// Room runs one clean-room agreement: it accepts each table once from its
// party, runs the manifest's query once every table is in, suppresses the
// small groups, erases the inputs, and hands the result to the
// recipients. It is safe for concurrent use.
type Room struct {
	manifest *Manifest
	digest   workload.Digest
	opts     Options
	log      *slog.Logger

	mu        sync.Mutex
	db        *sql.DB
	uploaded  map[string]int64 // table name → rows
	uploading map[string]bool  // tables whose upload is being read
	result    *Result
	runErr    error
	delivered map[string]bool
	done      chan struct{}
	closed    bool
}

// NewRoom opens an in-memory SQLite database with the manifest's tables,
// empty, and checks that the query runs on them and returns the group
// size column.
func NewRoom(ctx context.Context, m *Manifest, digest workload.Digest, o Options) (*Room, error) {
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = DefaultMaxUploadBytes
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	db, err := openDatabase(ctx, m)
	if err != nil {
		return nil, err
	}
	r := &Room{manifest: m, digest: digest, opts: o, log: log, db: db,
		uploaded: map[string]int64{}, uploading: map[string]bool{}, delivered: map[string]bool{}, done: make(chan struct{})}
	if _, err := r.query(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("the manifest's query does not run on its tables: %w", err)
	}
	return r, nil
}

// openDatabase opens a private in-memory database and creates the tables.
// secure_delete makes SQLite overwrite deleted content with zeros, so
// that dropping a table also clears its pages.
func openDatabase(ctx context.Context, m *Manifest) (*sql.DB, error) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, err
	}
	// Each connection to :memory: is a separate database, so the pool
	// must keep exactly one connection open for the room's lifetime.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	stmts := []string{"PRAGMA secure_delete = ON", "PRAGMA trusted_schema = OFF"}
	for _, t := range m.Tables {
		stmts = append(stmts, createTable(t))
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, fmt.Errorf("preparing the clean-room database: %s: %w", s, err)
		}
	}
	return db, nil
}

// createTable returns the CREATE TABLE statement of t. The names are
// validated identifiers and are quoted as well.
func createTable(t Table) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = fmt.Sprintf("%q %s", c.Name, c.Type)
	}
	return fmt.Sprintf("CREATE TABLE %q (%s) STRICT", t.Name, strings.Join(cols, ", "))
}

// Manifest returns the room's manifest and its digest.
func (r *Room) Manifest() (*Manifest, workload.Digest) { return r.manifest, r.digest }

// Done is closed when every recipient has received the result (or the
// query's error) and the room holds nothing more to deliver.
func (r *Room) Done() <-chan struct{} { return r.done }

// Upload reads party's CSV file for table from body and stores its rows.
// When it is the last table, the query runs and the inputs are erased
// before Upload returns.
func (r *Room) Upload(ctx context.Context, party, table string, body io.Reader) (rows int64, err error) {
	t, ok := r.manifest.Table(table)
	if !ok {
		return 0, fmt.Errorf("%w: table %q is not in the manifest", ErrNotAllowed, table)
	}
	if t.Party != party {
		return 0, fmt.Errorf("%w: table %q belongs to party %q, not to %q", ErrNotAllowed, table, t.Party, party)
	}

	db, err := r.startUpload(table)
	if err != nil {
		return 0, err
	}
	// The body is read without the lock, so that a slow upload does not
	// block status and result requests. The database's one connection
	// serializes the uploads themselves.
	rows, err = loadCSV(ctx, db, t, io.LimitReader(body, r.opts.MaxUploadBytes+1), r.opts.MaxUploadBytes)

	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.uploading, table)
	// Closing the room also closes its database, so an upload that failed
	// meanwhile reports the closed room rather than the database error.
	if r.closed {
		return 0, fmt.Errorf("%w: the room closed during the upload, and its inputs are erased", ErrClosed)
	}
	if err != nil {
		return 0, err
	}
	r.uploaded[table] = rows
	r.log.Info("cleanroom: table uploaded", "manifest", r.manifest.Name, "party", party, "table", table, "rows", rows)

	if len(r.uploaded) == len(r.manifest.Tables) {
		// The query and the erasure belong to every recipient, so the
		// last uploader closing its connection must not cancel them.
		r.runLocked(context.WithoutCancel(ctx))
	}
	return rows, nil
}

// startUpload marks table as being uploaded and returns the database to
// load it into, or the reason no upload of table is accepted now.
func (r *Room) startUpload(table string) (*sql.DB, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.result != nil || r.runErr != nil {
		return nil, fmt.Errorf("%w: the query already ran and the inputs are erased; no more uploads are accepted", ErrClosed)
	}
	if _, dup := r.uploaded[table]; dup {
		return nil, fmt.Errorf("%w: table %q is already uploaded; each table is uploaded once", ErrNotAllowed, table)
	}
	if r.uploading[table] {
		return nil, fmt.Errorf("%w: table %q is being uploaded by another request; wait for it to finish", ErrNotAllowed, table)
	}
	r.uploading[table] = true
	return r.db, nil
}

// SetResultKey sets the result key (see Options.ResultKey) of a room that
// has not run its query yet, for a workload that receives the key after it
// loaded the manifest.
func (r *Room) SetResultKey(key []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.result != nil || r.runErr != nil {
		return fmt.Errorf("%w: the result key must be set before the query runs", ErrClosed)
	}
	clear(r.opts.ResultKey)
	r.opts.ResultKey = key
	return nil
}

// Missing returns the tables not uploaded yet, as "table (party)".
func (r *Room) Missing() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.missingLocked()
}

func (r *Room) missingLocked() []string {
	var out []string
	for _, t := range r.manifest.Tables {
		if _, ok := r.uploaded[t.Name]; !ok {
			out = append(out, fmt.Sprintf("%s (party %s)", t.Name, t.Party))
		}
	}
	return out
}

// runLocked runs the query once, then erases the inputs whether or not it
// succeeded, so that a failed query leaves no data behind either.
func (r *Room) runLocked(ctx context.Context) {
	res, err := r.query(ctx)
	if err == nil {
		err = res.sign(r.opts.ResultKey)
	}
	if err != nil {
		r.runErr = fmt.Errorf("the clean-room query failed: %w", err)
		r.log.Error("cleanroom: query failed", "manifest", r.manifest.Name, "err", err)
	} else {
		r.result = res
		r.log.Info("cleanroom: query ran", "manifest", r.manifest.Name, "rows", len(res.Rows), "suppressed_groups", res.Suppressed)
	}
	if eerr := r.eraseLocked(ctx); eerr != nil {
		r.log.Error("cleanroom: erasing the inputs failed", "manifest", r.manifest.Name, "err", eerr)
		r.runErr = errors.Join(r.runErr, eerr)
	}
}

// eraseLocked drops every table, so that secure_delete zeroes their
// pages, and closes the database, which frees its memory.
func (r *Room) eraseLocked(ctx context.Context) error {
	if r.db == nil {
		return nil
	}
	var errs []error
	if _, err := r.db.ExecContext(ctx, "PRAGMA query_only = OFF"); err != nil {
		errs = append(errs, err)
	}
	for _, t := range r.manifest.Tables {
		if _, err := r.db.ExecContext(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %q", t.Name)); err != nil {
			errs = append(errs, fmt.Errorf("dropping table %s: %w", t.Name, err))
		}
	}
	errs = append(errs, r.db.Close())
	r.db = nil
	r.log.Info("cleanroom: inputs erased", "manifest", r.manifest.Name, "tables", len(r.manifest.Tables))
	return errors.Join(errs...)
}

// Result returns the result for party. It fails with ErrNotAllowed for a
// party that is not a recipient and with ErrWaiting before every table
// is uploaded, and returns the query's error when the query failed. The
// caller reports with MarkDelivered that party received the response.
func (r *Room) Result(party string) (*Result, error) {
	if !r.manifest.IsRecipient(party) {
		return nil, fmt.Errorf("%w: party %q is not a recipient of the result; the recipients are %s",
			ErrNotAllowed, party, strings.Join(r.manifest.Recipients, ", "))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("%w and holds no result", ErrClosed)
	}
	if r.result == nil && r.runErr == nil {
		return nil, fmt.Errorf("%w: waiting for %s", ErrWaiting, strings.Join(r.missingLocked(), ", "))
	}
	if r.runErr != nil {
		return nil, r.runErr
	}
	return r.result, nil
}

// MarkDelivered records that the recipient party received the result, or
// the query's error, once the response was sent. Done closes when every
// recipient has. It does nothing for other parties or before the query
// ran, so that a response lost on the way can be requested again.
func (r *Room) MarkDelivered(party string) {
	if !r.manifest.IsRecipient(party) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || (r.result == nil && r.runErr == nil) || r.delivered[party] {
		return
	}
	r.delivered[party] = true
	r.log.Info("cleanroom: result delivered", "manifest", r.manifest.Name, "party", party, "failed", r.runErr != nil)
	if len(r.delivered) == len(r.manifest.Recipients) {
		r.markDoneLocked()
	}
}

func (r *Room) markDoneLocked() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
}

// Close erases the inputs if the query has not run, drops the result and
// zeroes the result key. A closed room accepts nothing more.
func (r *Room) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.eraseLocked(context.Background())
	r.result = nil
	clear(r.opts.ResultKey)
	r.markDoneLocked()
	return err
}
