package cleanroom

import (
	"bytes"
	"context"
	"database/sql/driver"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"modernc.org/sqlite"
)

// queryHook runs inside the agreed query through the SQL function
// cleanroom_test_hook(), when set.
var queryHook atomic.Pointer[func()]

func init() {
	sqlite.MustRegisterScalarFunction("cleanroom_test_hook", 0, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
		if hook := queryHook.Load(); hook != nil {
			(*hook)()
		}
		return int64(1), nil
	})
}

// The query runs when the last table arrives, inside that upload's
// request. A last uploader that disconnects while the query runs, such as
// a client that timed out, must not fail the query for the other
// recipients or stop the erasure.
func TestCleanRoomLastUploaderDisconnects(t *testing.T) {
	manifest := editManifest(t, func(m map[string]any) {
		m["query"] = "SELECT COUNT(*) AS customers, cleanroom_test_hook() AS hooked FROM bank_a_fraud"
	})
	tr := startRoom(t, manifest)
	a, b := tr.banks(t, manifest)
	uploadExample(t, a, "bank_a_fraud")

	uploadCtx, cancelUpload := context.WithCancel(context.Background())
	defer cancelUpload()
	hook := func() {
		cancelUpload()
		// The workload notices the closed connection within
		// milliseconds, so one second lets it cancel the request's
		// context before the query goes on.
		time.Sleep(time.Second)
	}
	queryHook.Store(&hook)
	t.Cleanup(func() { queryHook.Store(nil) })

	_, err := b.Upload(uploadCtx, "bank_b_fraud", bytes.NewReader(readExample(t, "bank_b_fraud.csv")))
	if err == nil {
		t.Fatal("the upload whose client gave up returned no error")
	}
	queryHook.Store(nil)

	res, _, err := a.Result(context.Background())
	if err != nil {
		t.Fatalf("result after the last uploader disconnected: %v", err)
	}
	if len(res.Rows) != 1 {
		t.Fatalf("result has %d rows, want 1", len(res.Rows))
	}
	if got := fmt.Sprint(res.Rows[0][0]); got != "400" {
		t.Errorf("customers = %v, want 400", got)
	}
}
