//go:build ignore

// Command generate writes the clean-room example: two banks' fraud
// reports as CSV (400 rows each), the banks' example keys and the manifest
// that names them. The output is the same on every run, because the rows
// come from a seeded PCG and the Ed25519 keys from fixed seeds.
//
//	go run ./examples/cleanroom/generate.go
//
// The keys are published example keys and protect nothing.
package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"log"
	"os"
	"path/filepath"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/cleanroom"
)

const dir = "examples/cleanroom"

func main() {
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		log.Fatal(err)
	}
	keyA := writeKey("bank-a")
	keyB := writeKey("bank-b")
	write("bank_a_fraud.csv", cleanroom.ExampleReports("A", 400))
	write("bank_b_fraud.csv", cleanroom.ExampleReports("B", 400))
	write("manifest.json", cleanroom.ExampleManifest(keyA, keyB))
}

// writeKey writes an Ed25519 key derived from the party name and returns
// the SHA-256 of its public key.
func writeKey(party string) workload.Digest {
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
	h, err := workload.KeyHash(key.Public())
	if err != nil {
		log.Fatal(err)
	}
	return h
}

func write(name string, data []byte) {
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		log.Fatal(err)
	}
}
