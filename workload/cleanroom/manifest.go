package cleanroom

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cloister-dev/cloister/workload"
)

// Manifest is the agreement between the parties of a clean room: who
// takes part, which table each contributes, the one query that runs, who
// receives the result and which result groups are too small to release.
type Manifest struct {
	// Name identifies the agreement in logs and output.
	Name string `json:"name"`
	// Description is free text for the people who sign off the manifest.
	Description string `json:"description,omitempty"`
	// Parties are the data owners and recipients.
	Parties []Party `json:"parties"`
	// Tables are the inputs, each uploaded by one party.
	Tables []Table `json:"tables"`
	// Query is the single SQLite SELECT (or WITH) statement that runs once every
	// table is uploaded.
	Query string `json:"query"`
	// Recipients name the parties that may read the result.
	Recipients []string `json:"recipients"`
	// MinGroupSize is the k-anonymity threshold: a result row whose
	// GroupSizeColumn is below it is suppressed.
	MinGroupSize int64 `json:"min_group_size"`
	// GroupSizeColumn names the result column that counts the
	// individuals in each row's group.
	GroupSizeColumn string `json:"group_size_column"`
}

// Party is a participant, identified by the SHA-256 of its public key
// (SubjectPublicKeyInfo DER).
type Party = workload.ManifestParty

// Table is one party's input table.
type Table struct {
	Name    string   `json:"name"`
	Party   string   `json:"party"`
	Columns []Column `json:"columns"`
}

// Column is a column of an input table and of the CSV header that fills
// it. Type is a SQLite storage class: TEXT, INTEGER or REAL.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// columnTypes are the accepted column types.
var columnTypes = []string{"TEXT", "INTEGER", "REAL"}

// ParseManifest decodes and validates a manifest and returns it with its
// digest (see workload.HashManifest). Unknown fields are rejected, so
// that a field one party relies on cannot be silently ignored.
func ParseManifest(raw []byte) (*Manifest, workload.Digest, error) {
	return workload.DecodeManifest[Manifest](raw, "clean-room")
}

// Validate checks the manifest's names, references and threshold.
func (m *Manifest) Validate() error {
	if strings.TrimSpace(m.Name) == "" {
		return fmt.Errorf("invalid clean-room manifest: name is missing")
	}
	if err := workload.CheckParties(m.Parties); err != nil {
		return fmt.Errorf("invalid clean-room manifest: %w", err)
	}
	if err := m.validateTables(); err != nil {
		return err
	}
	if err := validateQuery(m.Query); err != nil {
		return err
	}
	if err := m.validateRecipients(); err != nil {
		return err
	}
	if m.MinGroupSize < 1 {
		return fmt.Errorf("invalid clean-room manifest: min_group_size is %d, expected at least 1", m.MinGroupSize)
	}
	if m.GroupSizeColumn == "" {
		return fmt.Errorf("invalid clean-room manifest: group_size_column is missing; name the result column that counts each group's members")
	}
	return nil
}

func (m *Manifest) validateTables() error {
	if len(m.Tables) == 0 {
		return fmt.Errorf("invalid clean-room manifest: tables is empty")
	}
	seen := map[string]bool{}
	for _, t := range m.Tables {
		if !identifier.MatchString(t.Name) || strings.HasPrefix(strings.ToLower(t.Name), "sqlite_") {
			return fmt.Errorf("invalid clean-room manifest: table name %q: use letters, digits and '_', not starting with a digit or sqlite_", t.Name)
		}
		if seen[strings.ToLower(t.Name)] {
			return fmt.Errorf("invalid clean-room manifest: table %q is listed twice (SQLite names are case-insensitive)", t.Name)
		}
		seen[strings.ToLower(t.Name)] = true
		if _, ok := m.Party(t.Party); !ok {
			return fmt.Errorf("invalid clean-room manifest: table %q belongs to party %q, which is not in parties", t.Name, t.Party)
		}
		if err := validateColumns(t); err != nil {
			return err
		}
	}
	return nil
}

func validateColumns(t Table) error {
	if len(t.Columns) == 0 {
		return fmt.Errorf("invalid clean-room manifest: table %q has no columns", t.Name)
	}
	seen := map[string]bool{}
	for _, c := range t.Columns {
		if !identifier.MatchString(c.Name) {
			return fmt.Errorf("invalid clean-room manifest: column %q of table %q: use letters, digits and '_', not starting with a digit", c.Name, t.Name)
		}
		if seen[strings.ToLower(c.Name)] {
			return fmt.Errorf("invalid clean-room manifest: column %q of table %q is listed twice", c.Name, t.Name)
		}
		seen[strings.ToLower(c.Name)] = true
		if !slices.Contains(columnTypes, c.Type) {
			return fmt.Errorf("invalid clean-room manifest: column %q of table %q has type %q, expected TEXT, INTEGER or REAL", c.Name, t.Name, c.Type)
		}
	}
	return nil
}

// validateQuery accepts one statement that starts with SELECT or WITH.
// Writes are also stopped at run time by PRAGMA query_only. A semicolon
// may only end the statement, which also rejects one inside a string
// literal.
func validateQuery(q string) error {
	q = strings.TrimSpace(q)
	q = strings.TrimSpace(strings.TrimSuffix(q, ";"))
	if q == "" {
		return fmt.Errorf("invalid clean-room manifest: query is missing")
	}
	if strings.Contains(q, ";") {
		return fmt.Errorf("invalid clean-room manifest: query contains more than one statement; a semicolon may only end it")
	}
	first := strings.ToUpper(strings.Fields(q)[0])
	if first != "SELECT" && first != "WITH" {
		return fmt.Errorf("invalid clean-room manifest: query starts with %q, expected SELECT or WITH", first)
	}
	return nil
}

func (m *Manifest) validateRecipients() error {
	if len(m.Recipients) == 0 {
		return fmt.Errorf("invalid clean-room manifest: recipients is empty, so nobody could read the result")
	}
	if err := workload.CheckPartyNames("recipient", m.Recipients, m.Parties); err != nil {
		return fmt.Errorf("invalid clean-room manifest: %w", err)
	}
	seen := map[string]bool{}
	for _, r := range m.Recipients {
		if seen[r] {
			return fmt.Errorf("invalid clean-room manifest: recipient %q is listed twice", r)
		}
		seen[r] = true
	}
	return nil
}

// Party returns the party called name.
func (m *Manifest) Party(name string) (Party, bool) {
	return workload.FindParty(m.Parties, name)
}

// Table returns the table called name.
func (m *Manifest) Table(name string) (Table, bool) {
	for _, t := range m.Tables {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// IsRecipient reports whether the party called name may read the result.
func (m *Manifest) IsRecipient(name string) bool { return slices.Contains(m.Recipients, name) }

// WorkloadParties returns the parties as the workload server identifies
// them.
func (m *Manifest) WorkloadParties() []workload.Party {
	return workload.ServerParties(m.Parties)
}
