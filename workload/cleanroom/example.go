package cleanroom

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/cloister-dev/cloister/workload"
)

// The example agreement: two banks find merchants where fraud hits
// customers of both, without revealing their customers. The files in
// examples/cleanroom and `cloister quickstart` are made with these
// functions.

// ExampleQuery counts, per merchant seen by both banks, the distinct
// customers, the reports, the devices and the amount. Customer IDs carry
// the bank's letter, so customers of different banks never count as one.
const ExampleQuery = `WITH reports AS (
  SELECT customer_id, merchant_id, device_id, amount_cents FROM bank_a_fraud
  UNION ALL
  SELECT customer_id, merchant_id, device_id, amount_cents FROM bank_b_fraud
)
SELECT merchant_id,
       COUNT(DISTINCT customer_id) AS customers,
       COUNT(*) AS reports,
       COUNT(DISTINCT device_id) AS devices,
       SUM(amount_cents) AS total_cents
FROM reports
WHERE merchant_id IN (SELECT merchant_id FROM bank_a_fraud INTERSECT SELECT merchant_id FROM bank_b_fraud)
GROUP BY merchant_id
ORDER BY customers DESC, merchant_id`

// exampleColumns is the schema of both banks' fraud-report tables.
var exampleColumns = []Column{
	{"report_id", "INTEGER"},
	{"customer_id", "TEXT"},
	{"merchant_id", "TEXT"},
	{"device_id", "TEXT"},
	{"amount_cents", "INTEGER"},
	{"reported_on", "TEXT"},
}

// ExampleManifest returns the example manifest for the banks' keys, as
// indented JSON.
func ExampleManifest(keyA, keyB workload.Digest) []byte {
	m := Manifest{
		Name: "shared-fraud-patterns",
		Description: "Two banks find merchants where fraud hits customers of both, without revealing their customers. " +
			"Only merchants seen by both banks are counted, and a merchant is released only when at least 5 distinct customers reported fraud there.",
		Parties: []Party{{Name: "bank-a", KeySHA256: keyA}, {Name: "bank-b", KeySHA256: keyB}},
		Tables: []Table{
			{Name: "bank_a_fraud", Party: "bank-a", Columns: exampleColumns},
			{Name: "bank_b_fraud", Party: "bank-b", Columns: exampleColumns},
		},
		Query:           ExampleQuery,
		Recipients:      []string{"bank-a", "bank-b"},
		MinGroupSize:    5,
		GroupSizeColumn: "customers",
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // A Manifest of strings and digests always encodes.
	}
	return append(out, '\n')
}

// ringMerchants are merchants where a fraud ring hits customers of both
// banks. rareMerchants appear at both banks but with at most 4 customers,
// so the threshold of 5 withholds them.
var (
	ringMerchants = []int{7, 13, 21, 34, 42}
	rareMerchants = []int{50, 51}
)

// ExampleReports returns rows fraud reports of bank "A" or "B" as CSV
// with a header. The same arguments give the same bytes.
func ExampleReports(bank string, rows int) []byte {
	seed := uint64(1)
	if bank == "B" {
		seed = 2
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	header := make([]string, len(exampleColumns))
	for i, c := range exampleColumns {
		header[i] = c.Name
	}
	w.Write(header)

	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= rows; i++ {
		customer := rng.IntN(900) + 1
		var merchant int
		switch r := rng.IntN(100); {
		case r < 35:
			merchant = ringMerchants[rng.IntN(len(ringMerchants))]
		case r < 37:
			merchant = rareMerchants[rng.IntN(len(rareMerchants))]
			customer = 1 + rng.IntN(2)
		default:
			// Merchants of this bank only: A gets 60-89, B gets 90-119.
			merchant = 60 + rng.IntN(30)
			if bank == "B" {
				merchant += 30
			}
		}
		device := fmt.Sprintf("D-%s%05d", bank, rng.IntN(5000))
		if merchant == ringMerchants[0] || merchant == ringMerchants[1] {
			// The ring reuses a few devices at both banks.
			device = fmt.Sprintf("D-R%03d", rng.IntN(12))
		}
		w.Write([]string{
			strconv.Itoa(i),
			fmt.Sprintf("%s-%06d", bank, customer),
			fmt.Sprintf("M-%03d", merchant),
			device,
			strconv.Itoa(500 + rng.IntN(250000)),
			start.AddDate(0, 0, rng.IntN(60)).Format(time.DateOnly),
		})
	}
	w.Flush()
	return buf.Bytes()
}
