package custody

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/cloister-dev/cloister/workload"
)

// Manifest is the custody configuration the parties agree on. Its digest
// is bound into the evidence through HOST_DATA.
type Manifest struct {
	// Name identifies the deployment in logs and output.
	Name string `json:"name"`
	// SealingKey is the key broker resource path (repository/type/tag)
	// of the 32-byte AES-256 sealing key.
	SealingKey string `json:"sealing_key"`
	// Parties are the clients that may connect, each named by the
	// SHA-256 of its public key.
	Parties []Party `json:"parties"`
	// Keys are the signing keys the workload holds.
	Keys []KeyPolicy `json:"keys"`
}

// Party is a client of the custody workload.
type Party struct {
	Name      string          `json:"name"`
	KeySHA256 workload.Digest `json:"key_sha256"`
}

// KeyPolicy names a signing key and who may use it.
type KeyPolicy struct {
	Name string  `json:"name"`
	Type KeyType `json:"type"`
	// Signers are the names of the parties that may sign with the key.
	Signers []string `json:"signers"`
	// MessagePrefixes, when not empty, restrict signing to messages that
	// start with one of these byte strings (UTF-8 as written), such as a
	// domain separator.
	MessagePrefixes []string `json:"message_prefixes,omitempty"`
}

var (
	nameSyntax = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	// resourceSegment is the key broker's syntax of a path segment.
	resourceSegment = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`)
)

// ParseManifest decodes and validates a manifest file and returns it with
// its digest. Unknown fields are rejected, because a field this version
// ignores could be a restriction the parties rely on.
func ParseManifest(raw []byte) (*Manifest, workload.Digest, error) {
	digest, err := workload.HashManifest(raw)
	if err != nil {
		return nil, workload.Digest{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, workload.Digest{}, fmt.Errorf("invalid custody manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, workload.Digest{}, err
	}
	return &m, digest, nil
}

// Validate checks the manifest and names the first invalid field.
func (m *Manifest) Validate() error {
	if err := checkResourcePath(m.SealingKey); err != nil {
		return fmt.Errorf("invalid custody manifest: sealing_key: %w", err)
	}
	if len(m.Parties) == 0 {
		return fmt.Errorf("invalid custody manifest: parties is empty")
	}
	names := map[string]bool{}
	keys := map[workload.Digest]bool{}
	for _, p := range m.Parties {
		if !nameSyntax.MatchString(p.Name) {
			return fmt.Errorf("invalid custody manifest: party name %q: use lowercase letters, digits, '.', '_' and '-', at most 63 characters", p.Name)
		}
		if names[p.Name] {
			return fmt.Errorf("invalid custody manifest: party %q is listed twice", p.Name)
		}
		if p.KeySHA256.IsZero() || keys[p.KeySHA256] {
			return fmt.Errorf("invalid custody manifest: party %q needs a key_sha256 of its own", p.Name)
		}
		names[p.Name], keys[p.KeySHA256] = true, true
	}

	if len(m.Keys) == 0 {
		return fmt.Errorf("invalid custody manifest: keys is empty")
	}
	keyNames := map[string]bool{}
	for _, k := range m.Keys {
		if !nameSyntax.MatchString(k.Name) {
			return fmt.Errorf("invalid custody manifest: key name %q: use lowercase letters, digits, '.', '_' and '-', at most 63 characters", k.Name)
		}
		if keyNames[k.Name] {
			return fmt.Errorf("invalid custody manifest: key %q is listed twice", k.Name)
		}
		keyNames[k.Name] = true
		if err := k.Type.check(); err != nil {
			return fmt.Errorf("invalid custody manifest: key %q: %w", k.Name, err)
		}
		if len(k.Signers) == 0 {
			return fmt.Errorf("invalid custody manifest: key %q has no signers, so nobody could use it", k.Name)
		}
		for _, s := range k.Signers {
			if !names[s] {
				return fmt.Errorf("invalid custody manifest: key %q names signer %q, which is not a party", k.Name, s)
			}
		}
		for _, p := range k.MessagePrefixes {
			if p == "" {
				return fmt.Errorf("invalid custody manifest: key %q has an empty message prefix, which would allow every message: remove message_prefixes instead", k.Name)
			}
		}
	}
	return nil
}

func checkResourcePath(path string) error {
	segments := strings.Split(path, "/")
	if len(segments) != 3 {
		return fmt.Errorf("resource path %q must be repository/type/tag", path)
	}
	for _, s := range segments {
		if !resourceSegment.MatchString(s) {
			return fmt.Errorf("resource path %q: segment %q must be letters, digits, '_', '-' and '.'", path, s)
		}
	}
	return nil
}

// WorkloadParties returns the parties as the workload server identifies
// them.
func (m *Manifest) WorkloadParties() []workload.Party {
	out := make([]workload.Party, len(m.Parties))
	for i, p := range m.Parties {
		out[i] = workload.Party{Name: p.Name, KeyHash: p.KeySHA256}
	}
	return out
}

// policy returns the policy of the key name.
func (m *Manifest) policy(name string) (KeyPolicy, bool) {
	for _, k := range m.Keys {
		if k.Name == name {
			return k, true
		}
	}
	return KeyPolicy{}, false
}
