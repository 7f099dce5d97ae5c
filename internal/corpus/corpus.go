// Package corpus gives tests access to the evidence corpus: real attestation
// evidence with the collateral to verify it offline and an expect.json per
// case that states the expected verdict and claims.
//
// The corpus directory comes from CLOISTER_EVIDENCE_DIR, defaulting to
// ../shared/evidence beside the module root. When it is absent, tests skip
// with a message, except under CI (CI set in the environment), where they
// fail, because a CI run without the corpus proves nothing.
//
// The Check functions compare a verification result with a case's
// expect.json, and run the robustness checks (prefixes, random inputs,
// concurrent verification) that every TEE package needs, so that each
// package's corpus test adds only the checks specific to its TEE.
package corpus

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/collateral"
)

// EnvDir names the environment variable that overrides the corpus location.
const EnvDir = "CLOISTER_EVIDENCE_DIR"

// Expect is a case's expect.json. Pointer fields are nil when the key is
// absent, which means the fact does not apply or is not stated.
type Expect struct {
	TEE                   string            `json:"tee"`
	At                    string            `json:"at"`
	Evidence              string            `json:"evidence"`
	SignatureValid        *bool             `json:"signature_valid"`
	ChainValid            *bool             `json:"chain_valid"`
	DefaultVerdict        string            `json:"default_verdict"`
	RejectReason          string            `json:"reject_reason"`
	VerdictIfDebugAllowed string            `json:"verdict_if_debug_allowed"`
	TCBStatus             string            `json:"tcb_status"`
	AdvisoryIDs           []string          `json:"advisory_ids"`
	Debug                 *bool             `json:"debug"`
	SigningKey            string            `json:"signing_key"`
	Product               string            `json:"product"`
	Measurement           string            `json:"measurement"`
	MRSigner              string            `json:"mrsigner"`
	RTMRs                 []string          `json:"rtmrs"`
	ReportData            string            `json:"report_data"`
	QuoteVersion          int               `json:"quote_version"`
	Roots                 []string          `json:"roots"`
	OtherInputs           map[string]string `json:"other_inputs"`
	Nonce                 *string           `json:"nonce"`
	Measurements          map[string]string `json:"measurements"`
	Notes                 string            `json:"notes"`
}

// Case is one case folder of the corpus.
type Case struct {
	// Name is "<tee>/<folder>", suitable as a subtest name.
	Name   string
	Dir    string
	Expect Expect
}

// Dir returns the corpus directory, skipping the test when it is absent
// (failing it under CI).
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(EnvDir)
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("corpus: %v", err)
		}
		dir = filepath.Join(root, "..", "shared", "evidence")
	}
	if _, err := os.Stat(dir); err != nil {
		msg := "evidence corpus not found at " + dir + "; set " + EnvDir + " to its location to run the tests on real evidence"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI requires it)")
		}
		t.Skip(msg)
	}
	return dir
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// Cases returns every case folder under the tee's directory that holds an
// expect.json, sorted by name, so that new folders are picked up without
// code changes. It fails the test when there are none.
func Cases(t testing.TB, tee string) []Case {
	t.Helper()
	base := filepath.Join(Dir(t), tee)
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatalf("corpus: reading %s: %v", base, err)
	}
	var cases []Case
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		data, err := os.ReadFile(filepath.Join(dir, "expect.json"))
		if err != nil {
			continue
		}
		var exp Expect
		if err := json.Unmarshal(data, &exp); err != nil {
			t.Fatalf("corpus: %s/expect.json: %v", dir, err)
		}
		cases = append(cases, Case{Name: tee + "/" + e.Name(), Dir: dir, Expect: exp})
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].Name < cases[j].Name })
	if len(cases) == 0 {
		t.Fatalf("corpus: no case with an expect.json under %s", base)
	}
	return cases
}

// Negative reports whether the case was derived from real evidence to be
// rejected.
func (c Case) Negative() bool {
	return strings.HasPrefix(filepath.Base(c.Dir), "negative-")
}

// EvidenceBytes reads the case's evidence file.
func (c Case) EvidenceBytes(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.Dir, c.Expect.Evidence))
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	return data
}

// Time returns the case's verification time, or the zero time when the
// case states none.
func (c Case) Time(t testing.TB) time.Time {
	t.Helper()
	if c.Expect.At == "" {
		return time.Time{}
	}
	at, err := time.Parse(time.RFC3339Nano, c.Expect.At)
	if err != nil {
		t.Fatalf("corpus: %s: invalid at %q: %v", c.Name, c.Expect.At, err)
	}
	return at
}

// Collateral loads what a user would pass as the collateral directory: every
// file of the case folder except SOURCE.md, expect.json and the evidence,
// plus the roots and other inputs that expect.json names.
func (c Case) Collateral(t testing.TB) *collateral.Set {
	t.Helper()
	set := &collateral.Set{}
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "SOURCE.md" || name == "expect.json" || name == c.Expect.Evidence {
			continue
		}
		set.Merge(load(t, filepath.Join(c.Dir, name)))
	}
	extra := append([]string{}, c.Expect.Roots...)
	for _, p := range c.Expect.OtherInputs {
		extra = append(extra, p)
	}
	for _, rel := range extra {
		p := filepath.Clean(filepath.Join(c.Dir, filepath.FromSlash(rel)))
		if filepath.Dir(p) == filepath.Clean(c.Dir) {
			continue // already loaded with the folder
		}
		set.Merge(load(t, p))
	}
	return set
}

func load(t testing.TB, path string) *collateral.Set {
	t.Helper()
	s, err := collateral.LoadPath(path)
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	return s
}

// synonyms are the words a clear rejection message may use for each
// reject_reason phrase of expect.json.
var synonyms = map[string][]string{
	"missing":        {"missing", "absent", "not provided", "not found", "required", "not determined"},
	"not determined": {"not determined", "undetermined", "missing", "no collateral", "not provided"},
	"tcb level":      {"tcb level", "no matching", "not supported"},
	"out of date":    {"out of date"},
	"configuration":  {"configuration"},
	"expired":        {"expired", "nextupdate", "next update", "not valid after", "stale", "notafter"},
	"qe report":      {"qe report"},
	"report data":    {"report data", "reportdata", "binding"},
}

var nonAlnum = regexp.MustCompile(`[^a-z0-9]`)

func normalize(s string) string { return nonAlnum.ReplaceAllString(strings.ToLower(s), "") }

// MatchesReason reports whether msg states the expected reject reason, in
// its own words or a synonym, ignoring case, spaces and punctuation.
func MatchesReason(msg, reason string) bool {
	words, ok := synonyms[strings.ToLower(reason)]
	if !ok {
		words = []string{reason}
	}
	low := normalize(msg)
	for _, w := range words {
		if strings.Contains(low, normalize(w)) {
			return true
		}
	}
	return false
}
