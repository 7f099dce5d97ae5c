//go:build unix

package cleanroom

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// benchRows is the number of rows of each bank's table.
const benchRows = 1_000_000

// benchTables returns two fraud-report CSV files of benchRows rows each,
// in the example's schema, from a seeded PCG. About one merchant in ten
// is seen by both banks.
func benchTables(b *testing.B) (a, bb []byte) {
	b.Helper()
	gen := func(bank string, seed uint64) []byte {
		rng := rand.New(rand.NewPCG(seed, 1))
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.Write([]string{"report_id", "customer_id", "merchant_id", "device_id", "amount_cents", "reported_on"})
		for i := 1; i <= benchRows; i++ {
			merchant := rng.IntN(50_000)
			if rng.IntN(10) == 0 {
				merchant = 100_000 + rng.IntN(5_000)
			}
			w.Write([]string{
				strconv.Itoa(i),
				fmt.Sprintf("%s-%07d", bank, rng.IntN(400_000)),
				fmt.Sprintf("%s-M%06d", bank, merchant),
				fmt.Sprintf("D-%s%06d", bank, rng.IntN(200_000)),
				strconv.Itoa(500 + rng.IntN(250_000)),
				fmt.Sprintf("2026-%02d-%02d", 1+rng.IntN(12), 1+rng.IntN(28)),
			})
		}
		w.Flush()
		// Merchants 100000 and up carry the same ID at both banks.
		return bytes.ReplaceAll(buf.Bytes(), []byte(bank+"-M1"), []byte("X-M1"))
	}
	return gen("A", 1), gen("B", 2)
}

// BenchmarkCleanRoom runs the example's query over two tables of one
// million rows each, through the clean room and directly on the same
// engine, alternating the two in every iteration so that a change in the
// machine's load affects both alike. It reports the wall time of each
// (cleanroom-ns/op, direct-ns/op), the process CPU time of each from
// getrusage (cleanroom-cpu-ns/op, direct-cpu-ns/op), which a busy machine
// disturbs less, and the ratio of the CPU times.
//
// The clean room validates and loads both CSV files, runs the query,
// suppresses small groups and erases the inputs. The direct run parses
// the same files, inserts them with a prepared statement in one
// transaction per table, and reads the query's rows.
func BenchmarkCleanRoom(b *testing.B) {
	m, d, err := ParseManifest(readExample(b, "manifest.json"))
	if err != nil {
		b.Fatal(err)
	}
	csvA, csvB := benchTables(b)
	ctx := context.Background()
	var roomTime, directTime, roomCPU, directCPU time.Duration
	b.ResetTimer()
	for b.Loop() {
		start, cpu := time.Now(), cpuTime(b)
		runRoom(b, ctx, m, d, csvA, csvB)
		roomTime += time.Since(start)
		roomCPU += cpuTime(b) - cpu

		start, cpu = time.Now(), cpuTime(b)
		runDirect(b, ctx, m, csvA, csvB)
		directTime += time.Since(start)
		directCPU += cpuTime(b) - cpu
	}
	n := float64(b.N)
	b.ReportMetric(float64(roomTime.Nanoseconds())/n, "cleanroom-ns/op")
	b.ReportMetric(float64(directTime.Nanoseconds())/n, "direct-ns/op")
	b.ReportMetric(float64(roomCPU.Nanoseconds())/n, "cleanroom-cpu-ns/op")
	b.ReportMetric(float64(directCPU.Nanoseconds())/n, "direct-cpu-ns/op")
	b.ReportMetric(float64(roomCPU)/float64(directCPU), "ratio")
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runRoom(b *testing.B, ctx context.Context, m *Manifest, d workload.Digest, csvA, csvB []byte) {
	room, err := NewRoom(ctx, m, d, Options{Log: workloadtest.QuietLog()})
	if err != nil {
		b.Fatal(err)
	}
	defer room.Close()
	if _, err := room.Upload(ctx, "bank-a", "bank_a_fraud", bytes.NewReader(csvA)); err != nil {
		b.Fatal(err)
	}
	if _, err := room.Upload(ctx, "bank-b", "bank_b_fraud", bytes.NewReader(csvB)); err != nil {
		b.Fatal(err)
	}
	res, err := room.Result("bank-a")
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Rows) == 0 {
		b.Fatal("the clean-room result is empty")
	}
}

func runDirect(b *testing.B, ctx context.Context, m *Manifest, csvA, csvB []byte) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for i, data := range [][]byte{csvA, csvB} {
		t := m.Tables[i]
		if _, err := db.Exec(createTable(t)); err != nil {
			b.Fatal(err)
		}
		directInsert(b, db, t, data)
	}
	rows, err := db.QueryContext(ctx, m.Query)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var merchant string
		var customers, reports, devices, total int64
		if err := rows.Scan(&merchant, &customers, &reports, &devices, &total); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if n == 0 {
		b.Fatal("the direct result is empty")
	}
}

func directInsert(b *testing.B, db *sql.DB, t Table, data []byte) {
	r := csv.NewReader(bytes.NewReader(data))
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		b.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(fmt.Sprintf("INSERT INTO %q VALUES (?,?,?,?,?,?)", t.Name))
	if err != nil {
		b.Fatal(err)
	}
	for {
		rec, err := r.Read()
		if err != nil {
			break
		}
		id, _ := strconv.ParseInt(rec[0], 10, 64)
		amount, _ := strconv.ParseInt(rec[4], 10, 64)
		if _, err := stmt.Exec(id, rec[1], rec[2], rec[3], amount, rec[5]); err != nil {
			b.Fatal(err)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
