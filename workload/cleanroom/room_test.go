package cleanroom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// exampleDir is the clean-room example: two banks' fraud reports.
const exampleDir = "../../examples/cleanroom"

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(exampleDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// editManifest returns the example manifest with edit applied to its
// decoded JSON.
func editManifest(t testing.TB, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readExample(t, "manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newRoom(t testing.TB, raw []byte, o Options) *Room {
	t.Helper()
	m, d, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	o.Log = workloadtest.QuietLog()
	r, err := NewRoom(context.Background(), m, d, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRoomRunsExample(t *testing.T) {
	r := newRoom(t, readExample(t, "manifest.json"), Options{})
	ctx := context.Background()
	if _, err := r.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv"))); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Result("bank-a"); !errors.Is(err, ErrWaiting) {
		t.Fatalf("Result before the last upload: %v, want ErrWaiting", err)
	}
	// A bounded context makes a regression fail rather than hang.
	otherCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.Upload(otherCtx, "bank-b", "bank_b_fraud", bytes.NewReader(readExample(t, "bank_b_fraud.csv"))); err != nil {
		t.Fatal(err)
	}

	res, err := r.Result("bank-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) == 0 {
		t.Fatal("the result has no rows")
	}
	if res.Suppressed == 0 {
		t.Error("no group was suppressed, but the example has merchants with fewer than 5 customers")
	}
	size := slices.Index(res.Columns, "customers")
	merchant := slices.Index(res.Columns, "merchant_id")
	for _, row := range res.Rows {
		if n := row[size].(int64); n < 5 {
			t.Errorf("row %v has %d customers, below the minimum of 5", row, n)
		}
		if m := row[merchant].(string); m == "M-050" || m == "M-051" {
			t.Errorf("merchant %s, seen by at most 4 customers, was released", m)
		}
	}
	if r.db != nil {
		t.Error("the database is still open after the query ran")
	}
}

func TestRoomRejects(t *testing.T) {
	ctx := context.Background()
	csvA := readExample(t, "bank_a_fraud.csv")
	cases := []struct {
		name         string
		party, table string
		body         string
		want         error
		wantText     string
	}{
		{"other party's table", "bank-b", "bank_a_fraud", string(csvA), ErrNotAllowed, `belongs to party "bank-a"`},
		{"unknown table", "bank-a", "customers", string(csvA), ErrNotAllowed, "not in the manifest"},
		{"wrong header", "bank-a", "bank_a_fraud", "id,customer\n1,x\n", ErrInvalidInput, "header"},
		{"missing column", "bank-a", "bank_a_fraud", strings.SplitN(string(csvA), "\n", 2)[0] + "\n1,A-1,M-1,D-1,100\n", ErrInvalidInput, "line 2"},
		{"not an integer", "bank-a", "bank_a_fraud", strings.SplitN(string(csvA), "\n", 2)[0] + "\n1,A-1,M-1,D-1,lots,2026-01-01\n", ErrInvalidInput, "column amount_cents"},
		{"header only", "bank-a", "bank_a_fraud", strings.SplitN(string(csvA), "\n", 2)[0] + "\n", ErrInvalidInput, "no rows"},
		{"empty", "bank-a", "bank_a_fraud", "", ErrInvalidInput, "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoom(t, readExample(t, "manifest.json"), Options{})
			_, err := r.Upload(ctx, tc.party, tc.table, strings.NewReader(tc.body))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Upload: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not contain %q", err, tc.wantText)
			}
			if strings.Contains(err.Error(), "lots") {
				t.Errorf("error %q repeats the uploaded value", err)
			}
		})
	}
}

func TestRoomUploadWithoutHeader(t *testing.T) {
	rows := strings.SplitN(string(readExample(t, "bank_a_fraud.csv")), "\n", 2)[1]
	firstRow := strings.SplitN(rows, "\n", 2)[0]
	r := newRoom(t, readExample(t, "manifest.json"), Options{})

	_, err := r.Upload(context.Background(), "bank-a", "bank_a_fraud", strings.NewReader(rows))
	if !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("Upload: %v, want %v", err, ErrInvalidInput)
	}
	if !strings.Contains(err.Error(), "report_id,customer_id") {
		t.Errorf("error %q does not name the expected header line", err)
	}
	for _, field := range strings.Split(firstRow, ",")[1:] {
		if strings.Contains(err.Error(), field) {
			t.Errorf("error %q repeats the field %q of the first row", err, field)
		}
	}
}

func TestRoomUploadOnce(t *testing.T) {
	r := newRoom(t, readExample(t, "manifest.json"), Options{})
	ctx := context.Background()
	csvA := readExample(t, "bank_a_fraud.csv")
	if _, err := r.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(csvA)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(csvA)); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("second upload: %v, want ErrNotAllowed", err)
	}
}

func TestRoomRejectsAfterRun(t *testing.T) {
	r := newRoom(t, readExample(t, "manifest.json"), Options{})
	ctx := context.Background()
	r.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv")))
	if _, err := r.Upload(ctx, "bank-b", "bank_b_fraud", bytes.NewReader(readExample(t, "bank_b_fraud.csv"))); err != nil {
		t.Fatal(err)
	}
	_, err := r.Upload(ctx, "bank-b", "bank_b_fraud", bytes.NewReader(readExample(t, "bank_b_fraud.csv")))
	if !errors.Is(err, ErrClosed) {
		t.Errorf("upload after the run: %v, want ErrClosed", err)
	}
}

func TestRoomResultMAC(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	r := newRoom(t, readExample(t, "manifest.json"), Options{ResultKey: bytes.Clone(key)})
	ctx := context.Background()
	r.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv")))
	r.Upload(ctx, "bank-b", "bank_b_fraud", bytes.NewReader(readExample(t, "bank_b_fraud.csv")))
	res, err := r.Result("bank-b")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyResultMAC(raw, key); err != nil {
		t.Errorf("VerifyResultMAC: %v", err)
	}
	changed := bytes.Replace(raw, []byte(`"M-0`), []byte(`"M-9`), 1)
	if err := VerifyResultMAC(changed, key); err == nil {
		t.Error("VerifyResultMAC accepted a changed result")
	}
	if err := VerifyResultMAC(raw, []byte("another key")); err == nil {
		t.Error("VerifyResultMAC accepted another key")
	}
}

func TestRoomCloseZeroesKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	r := newRoom(t, readExample(t, "manifest.json"), Options{ResultKey: key})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, make([]byte, len(key))) {
		t.Error("Close did not zero the result key")
	}
	if _, err := r.Result("bank-a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Result after Close: %v, want ErrClosed", err)
	}
}

func TestRoomDoneAfterDelivery(t *testing.T) {
	r := newRoom(t, readExample(t, "manifest.json"), Options{})
	ctx := context.Background()
	r.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv")))
	r.Upload(ctx, "bank-b", "bank_b_fraud", bytes.NewReader(readExample(t, "bank_b_fraud.csv")))
	r.Result("bank-a")
	r.MarkDelivered("bank-a")
	r.Result("bank-b")
	select {
	case <-r.Done():
		t.Fatal("Done closed before every recipient had the result")
	default:
	}
	r.MarkDelivered("bank-b")
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed after every recipient had the result")
	}
}

func TestRoomRecipientOnly(t *testing.T) {
	raw := editManifest(t, func(m map[string]any) { m["recipients"] = []string{"bank-a"} })
	r := newRoom(t, raw, Options{})
	if _, err := r.Result("bank-b"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("Result for a non-recipient: %v, want ErrNotAllowed", err)
	}
}

func TestNewRoomChecksQuery(t *testing.T) {
	cases := []struct {
		name, query, want string
	}{
		{"no group column", "SELECT merchant_id, COUNT(*) AS n FROM bank_a_fraud GROUP BY merchant_id", "group_size_column"},
		{"unknown table", "SELECT COUNT(*) AS customers FROM accounts", "no such table"},
		{"two group columns", "SELECT COUNT(*) AS customers, MIN(customer_id) AS customers FROM bank_a_fraud", `2 columns named "customers"`},
		{"group column in other case", "SELECT MIN(customer_id) AS Customers, COUNT(*) AS customers FROM bank_a_fraud", `2 columns named "customers"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, d, err := ParseManifest(editManifest(t, func(m map[string]any) { m["query"] = tc.query }))
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewRoom(context.Background(), m, d, Options{Log: workloadtest.QuietLog()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewRoom: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseManifestRejects(t *testing.T) {
	cases := []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"two statements", func(m map[string]any) { m["query"] = "SELECT 1 AS customers; DROP TABLE bank_a_fraud" }, "more than one statement"},
		{"not a select", func(m map[string]any) { m["query"] = "DELETE FROM bank_a_fraud" }, "expected SELECT or WITH"},
		{"unknown recipient", func(m map[string]any) { m["recipients"] = []string{"bank-c"} }, `recipient "bank-c"`},
		{"no recipients", func(m map[string]any) { m["recipients"] = []string{} }, "recipients is empty"},
		{"zero threshold", func(m map[string]any) { m["min_group_size"] = 0 }, "min_group_size"},
		{"unknown field", func(m map[string]any) { m["max_group_size"] = 9 }, "unknown field"},
		{"bad key digest", func(m map[string]any) { m["parties"].([]any)[0].(map[string]any)["key_sha256"] = "abcd" }, "invalid SHA-256 digest"},
		{"same key twice", func(m map[string]any) {
			ps := m["parties"].([]any)
			ps[1].(map[string]any)["key_sha256"] = ps[0].(map[string]any)["key_sha256"]
		}, "same key"},
		{"table of unknown party", func(m map[string]any) { m["tables"].([]any)[0].(map[string]any)["party"] = "bank-c" }, `party "bank-c"`},
		{"bad column type", func(m map[string]any) {
			m["tables"].([]any)[0].(map[string]any)["columns"].([]any)[0].(map[string]any)["type"] = "BLOB"
		}, "expected TEXT, INTEGER or REAL"},
		{"sqlite table name", func(m map[string]any) { m["tables"].([]any)[0].(map[string]any)["name"] = "sqlite_master2" }, "table name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseManifest(editManifest(t, tc.edit))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseManifest: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestRoomGroupSizeNotCount runs a query whose group-size column holds
// private text, and checks that the failed query's error names the type
// but no value of that column.
func TestRoomGroupSizeNotCount(t *testing.T) {
	raw := editManifest(t, func(m map[string]any) {
		m["query"] = "SELECT customer_id AS customers FROM bank_a_fraud UNION ALL SELECT customer_id FROM bank_b_fraud"
	})
	r := newRoom(t, raw, Options{})
	ctx := context.Background()
	if _, err := r.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv"))); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Upload(ctx, "bank-b", "bank_b_fraud", bytes.NewReader(readExample(t, "bank_b_fraud.csv"))); err != nil {
		t.Fatal(err)
	}

	_, err := r.Result("bank-a")
	if err == nil {
		t.Fatal("Result released rows whose group size is text")
	}
	if !strings.Contains(err.Error(), "TEXT") {
		t.Errorf("error %q does not name the TEXT type", err)
	}
	if strings.Contains(err.Error(), "A-0") {
		t.Errorf("error %q contains a customer ID", err)
	}
}

// A query whose released value overflows to infinity fails with the
// column and the fix, instead of a result that no recipient can receive.
func TestRoomInfiniteResultFails(t *testing.T) {
	raw := editManifest(t, func(m map[string]any) {
		m["query"] = "SELECT 1e308 * 10 AS total, COUNT(*) AS customers FROM bank_a_fraud"
		m["min_group_size"] = 1
	})
	r := newRoom(t, raw, Options{})
	ctx := context.Background()
	r.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv")))
	r.Upload(ctx, "bank-b", "bank_b_fraud", bytes.NewReader(readExample(t, "bank_b_fraud.csv")))

	_, err := r.Result("bank-a")
	if err == nil || !strings.Contains(err.Error(), "result row 1, column total: the value is infinite or not a number") {
		t.Fatalf("Result = %v, want an error naming row 1 and column total", err)
	}
}

// Only MarkDelivered of a recipient after the run counts towards Done, so
// a recipient whose response was lost can request the result again.
func TestRoomMarkDeliveredAfterRunOnly(t *testing.T) {
	r := newRoom(t, readExample(t, "manifest.json"), Options{})
	ctx := context.Background()
	r.MarkDelivered("bank-a")
	r.MarkDelivered("bank-b")
	r.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv")))
	r.Upload(ctx, "bank-b", "bank_b_fraud", bytes.NewReader(readExample(t, "bank_b_fraud.csv")))
	select {
	case <-r.Done():
		t.Fatal("Done closed by deliveries marked before the query ran")
	default:
	}

	for range 2 {
		if _, err := r.Result("bank-a"); err != nil {
			t.Fatalf("Result for bank-a: %v", err)
		}
	}
	r.MarkDelivered("bank-a")
	r.MarkDelivered("bank-b")
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed after both recipients received the result")
	}
}

// A line with the wrong number of fields names the expected columns but
// none of the line's values.
func TestRoomUploadWrongFieldCount(t *testing.T) {
	r := newRoom(t, readExample(t, "manifest.json"), Options{})
	lines := strings.SplitN(string(readExample(t, "bank_a_fraud.csv")), "\n", 3)
	for name, body := range map[string]string{
		"header": "report_id,SECRET-VALUE\n",
		"row":    lines[0] + "\n" + "R-1,SECRET-VALUE\n",
	} {
		_, err := r.Upload(context.Background(), "bank-a", "bank_a_fraud", strings.NewReader(body))
		if err == nil || !strings.Contains(err.Error(), "wrong number of fields, expected") || !strings.Contains(err.Error(), lines[0]) {
			t.Errorf("%s: err = %v, want one that names the expected header %q", name, err, lines[0])
		}
		if err != nil && strings.Contains(err.Error(), "SECRET-VALUE") {
			t.Errorf("%s: error %q contains a value of the line", name, err)
		}
	}
}

// An upload whose body has not arrived blocks neither status nor result
// requests nor the other party's upload, and a second upload of the same
// table is rejected meanwhile.
func TestRoomSlowUploadDoesNotBlock(t *testing.T) {
	r := newRoom(t, readExample(t, "manifest.json"), Options{})
	ctx := context.Background()
	body, writer := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := r.Upload(ctx, "bank-a", "bank_a_fraud", body)
		done <- err
	}()

	// Wait until the upload has started reading.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		started := r.uploading["bank_a_fraud"]
		r.mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload did not start")
		}
	}

	if missing := r.Missing(); len(missing) != 2 {
		t.Errorf("Missing during an upload = %v, want both tables", missing)
	}
	if _, err := r.Result("bank-a"); !errors.Is(err, ErrWaiting) {
		t.Errorf("Result during an upload: %v, want ErrWaiting", err)
	}
	_, err := r.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(readExample(t, "bank_a_fraud.csv")))
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "being uploaded by another request") {
		t.Errorf("second upload of the same table: %v, want ErrNotAllowed", err)
	}

	// The database connection is taken only after a body has arrived, so
	// the other party's upload completes meanwhile.
	if _, err := r.Upload(ctx, "bank-b", "bank_b_fraud", bytes.NewReader(readExample(t, "bank_b_fraud.csv"))); err != nil {
		t.Fatalf("the other party's upload during a slow one: %v", err)
	}
	if missing := r.Missing(); len(missing) != 1 || !strings.HasPrefix(missing[0], "bank_a_fraud ") {
		t.Errorf("Missing after the other upload = %v, want bank_a_fraud only", missing)
	}

	if _, err := writer.Write(readExample(t, "bank_a_fraud.csv")); err != nil {
		t.Fatal(err)
	}
	writer.Close()
	if err := <-done; err != nil {
		t.Fatalf("the slow upload: %v", err)
	}
	if missing := r.Missing(); len(missing) != 0 {
		t.Errorf("Missing after both uploads = %v, want none", missing)
	}
}
