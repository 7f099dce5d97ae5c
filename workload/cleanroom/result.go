package cleanroom

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloister-dev/cloister/workload"
)

// Result is the released output of a clean-room query.
type Result struct {
	// Manifest is the digest of the manifest whose query produced it.
	Manifest workload.Digest `json:"manifest_sha256"`
	// Columns are the query's result columns.
	Columns []string `json:"columns"`
	// Rows are the released rows. SQLite values become JSON numbers,
	// strings and null, and BLOBs base64 strings. Client decodes the
	// numbers as json.Number, so that 64-bit integers stay exact.
	Rows [][]any `json:"rows"`
	// Suppressed counts the rows withheld because their group size was
	// below MinGroupSize.
	Suppressed   int   `json:"suppressed_groups"`
	MinGroupSize int64 `json:"min_group_size"`
	// MAC is HMAC-SHA256 in hex over the canonical JSON of the result
	// without this field, keyed by the room's ResultKey; empty without a
	// key.
	MAC string `json:"mac,omitempty"`
}

// sign sets MAC when key is not empty.
func (r *Result) sign(key []byte) error {
	if len(key) == 0 {
		return nil
	}
	r.MAC = ""
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	mac, err := resultMAC(raw, key)
	if err != nil {
		return err
	}
	r.MAC = hex.EncodeToString(mac)
	return nil
}

// resultMAC computes the mac of a result's JSON, ignoring its "mac" field.
func resultMAC(raw, key []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("invalid result JSON: %w", err)
	}
	delete(fields, "mac")
	stripped, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	canon, err := workload.Canonical(stripped)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write(canon)
	return m.Sum(nil), nil
}

// VerifyResultMAC checks the mac of a result's JSON as the workload sent
// it against key.
func VerifyResultMAC(raw, key []byte) error {
	var r struct {
		MAC string `json:"mac"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("invalid result JSON: %w", err)
	}
	if r.MAC == "" {
		return errors.New("the result carries no mac; the workload ran without a result key")
	}
	got, err := hex.DecodeString(r.MAC)
	if err != nil {
		return fmt.Errorf("invalid result mac %q: %v", r.MAC, err)
	}
	want, err := resultMAC(raw, key)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, want) {
		return fmt.Errorf("the result mac %s does not match the result key; the result was changed or came from a workload without this key", r.MAC)
	}
	return nil
}
