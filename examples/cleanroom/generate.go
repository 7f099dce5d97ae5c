//go:build ignore

// Command generate writes the clean-room example: two banks' fraud
// reports as CSV, the banks' example keys and the manifest that names
// them. The output is the same on every run, because the rows come from a
// seeded PCG and the Ed25519 keys from fixed seeds.
//
//	go run ./examples/cleanroom/generate.go
//
// The keys are published example keys and protect nothing.
package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const dir = "examples/cleanroom"

// ringMerchants are merchants where a fraud ring hits customers of both
// banks; rareMerchants appear at both banks but with too few customers to
// be released.
var (
	ringMerchants = []int{7, 13, 21, 34, 42}
	rareMerchants = []int{50, 51}
)

func main() {
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		log.Fatal(err)
	}
	hashA := writeKey("bank-a")
	hashB := writeKey("bank-b")
	writeReports("bank_a_fraud.csv", "A", 1)
	writeReports("bank_b_fraud.csv", "B", 2)
	writeManifest(hashA, hashB)
}

// writeKey writes an Ed25519 key derived from the party name and returns
// the SHA-256 of its public key (SubjectPublicKeyInfo DER).
func writeKey(party string) string {
	seed := sha256.Sum256([]byte("cloister clean-room example key " + party))
	key := ed25519.NewKeyFromSeed(seed[:])
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "keys", party+".pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		log.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		log.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

// writeReports writes 400 fraud reports of one bank.
func writeReports(name, bank string, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		log.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"report_id", "customer_id", "merchant_id", "device_id", "amount_cents", "reported_on"})
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= 400; i++ {
		customer := rng.IntN(900) + 1
		var merchant int
		switch r := rng.IntN(100); {
		case r < 35:
			merchant = ringMerchants[rng.IntN(len(ringMerchants))]
		case r < 37:
			merchant = rareMerchants[rng.IntN(len(rareMerchants))]
			customer = 1 + rng.IntN(2)
		default:
			// Merchants only this bank sees: A gets 60-89, B gets 90-119.
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
	if err := w.Error(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

type column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type table struct {
	Name    string   `json:"name"`
	Party   string   `json:"party"`
	Columns []column `json:"columns"`
}

type party struct {
	Name      string `json:"name"`
	KeySHA256 string `json:"key_sha256"`
}

// manifest lists the fields in the order a reader reviews them.
type manifest struct {
	Name            string   `json:"name"`
	Description     string   `json:"description"`
	Parties         []party  `json:"parties"`
	Tables          []table  `json:"tables"`
	Query           string   `json:"query"`
	Recipients      []string `json:"recipients"`
	MinGroupSize    int      `json:"min_group_size"`
	GroupSizeColumn string   `json:"group_size_column"`
}

func writeManifest(hashA, hashB string) {
	columns := []column{
		{"report_id", "INTEGER"},
		{"customer_id", "TEXT"},
		{"merchant_id", "TEXT"},
		{"device_id", "TEXT"},
		{"amount_cents", "INTEGER"},
		{"reported_on", "TEXT"},
	}
	m := manifest{
		Name:            "shared-fraud-patterns",
		Description:     "Two banks find merchants where fraud hits customers of both, without revealing their customers. Only merchants seen by both banks are counted, and a merchant is released only when at least 5 distinct customers reported fraud there.",
		Parties:         []party{{"bank-a", hashA}, {"bank-b", hashB}},
		Tables:          []table{{"bank_a_fraud", "bank-a", columns}, {"bank_b_fraud", "bank-b", columns}},
		Query:           Query,
		Recipients:      []string{"bank-a", "bank-b"},
		MinGroupSize:    5,
		GroupSizeColumn: "customers",
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), append(out, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}

// Query counts, per merchant seen by both banks, the distinct customers,
// the reports, the devices and the amount. Customer IDs carry the bank's
// letter, so customers of different banks never count as one.
const Query = `WITH reports AS (
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
