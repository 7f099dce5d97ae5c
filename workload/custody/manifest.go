package custody

import (
	"fmt"

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
type Party = workload.ManifestParty

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
	// PublicKey, when not empty, pins the key: standard base64 of its
	// public key in the encoding PublicKey.Format names, as cloister
	// custody keys prints it. Open then never generates the key, and
	// fails when the sealed file is missing or contains another key.
	PublicKey string `json:"public_key,omitempty"`
}

// ParseManifest decodes and validates a manifest file and returns it with
// its digest. Unknown fields are rejected, because a field this version
// ignores could be a restriction the parties rely on.
func ParseManifest(raw []byte) (*Manifest, workload.Digest, error) {
	return workload.DecodeManifest[Manifest](raw, "custody")
}

// Validate checks the manifest and names the first invalid field.
func (m *Manifest) Validate() error {
	if err := workload.CheckResourcePath(m.SealingKey); err != nil {
		return fmt.Errorf("invalid custody manifest: sealing_key: %w", err)
	}
	if err := workload.CheckParties(m.Parties); err != nil {
		return fmt.Errorf("invalid custody manifest: %w", err)
	}

	if len(m.Keys) == 0 {
		return fmt.Errorf("invalid custody manifest: keys is empty")
	}
	keyNames := map[string]bool{}
	for _, k := range m.Keys {
		if err := workload.CheckName("key", k.Name); err != nil {
			return fmt.Errorf("invalid custody manifest: %w", err)
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
		if err := workload.CheckPartyNames("signer", k.Signers, m.Parties); err != nil {
			return fmt.Errorf("invalid custody manifest: key %q: %w", k.Name, err)
		}
		for _, p := range k.MessagePrefixes {
			if p == "" {
				return fmt.Errorf("invalid custody manifest: key %q has an empty message prefix, which would allow every message: remove message_prefixes instead", k.Name)
			}
		}
		if _, err := k.pinnedPublicKey(); err != nil {
			return fmt.Errorf("invalid custody manifest: key %q: %w", k.Name, err)
		}
	}
	return nil
}

// WorkloadParties returns the parties as the workload server identifies
// them.
func (m *Manifest) WorkloadParties() []workload.Party {
	return workload.ServerParties(m.Parties)
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
