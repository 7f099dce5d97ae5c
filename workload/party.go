package workload

import (
	"fmt"
	"regexp"
)

// ManifestParty is a party as a workload manifest lists it: its name and
// the SHA-256 of its public key (see KeyHash).
type ManifestParty struct {
	Name      string `json:"name"`
	KeySHA256 Digest `json:"key_sha256"`
}

// nameSyntax is the syntax of party names and other names in manifests.
// Names appear in logs, file names and URL paths, so they are restricted to
// characters that need no escaping there.
var nameSyntax = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// CheckName rejects a name that is not 1 to 63 lowercase letters, digits,
// '.', '_' and '-', starting with a letter or digit. The error names the
// value as "kind name", such as "party name".
func CheckName(kind, name string) error {
	if !nameSyntax.MatchString(name) {
		return fmt.Errorf("%s name %q: use lowercase letters, digits, '.', '_' and '-', at most 63 characters", kind, name)
	}
	return nil
}

// CheckParties checks the party list of a manifest: it is not empty, every
// name is valid (CheckName) and listed once, and every party has a
// key_sha256 of its own. Errors name the party but not the manifest, so
// callers add that.
func CheckParties(parties []ManifestParty) error {
	if len(parties) == 0 {
		return fmt.Errorf("parties is empty")
	}
	names := map[string]bool{}
	keys := map[Digest]string{}
	for _, p := range parties {
		if err := CheckName("party", p.Name); err != nil {
			return err
		}
		if names[p.Name] {
			return fmt.Errorf("party %q is listed twice", p.Name)
		}
		names[p.Name] = true

		if p.KeySHA256.IsZero() {
			return fmt.Errorf("party %q has no key_sha256", p.Name)
		}
		if other, dup := keys[p.KeySHA256]; dup {
			return fmt.Errorf("party %q reuses the key %s of another party, %q: the same key under two names would count as two parties, so give each party a key_sha256 of its own",
				p.Name, p.KeySHA256, other)
		}
		keys[p.KeySHA256] = p.Name
	}
	return nil
}

// FindParty returns the party called name.
func FindParty(parties []ManifestParty, name string) (ManifestParty, bool) {
	for _, p := range parties {
		if p.Name == name {
			return p, true
		}
	}
	return ManifestParty{}, false
}

// CheckPartyNames rejects a name in names that is not a party. The error
// calls the entry role, such as "recipient" or "signer".
func CheckPartyNames(role string, names []string, parties []ManifestParty) error {
	for _, n := range names {
		if _, ok := FindParty(parties, n); !ok {
			return fmt.Errorf("%s %q is not a party", role, n)
		}
	}
	return nil
}

// ServerParties returns the parties as Serve identifies them.
func ServerParties(parties []ManifestParty) []Party {
	out := make([]Party, len(parties))
	for i, p := range parties {
		out[i] = Party{Name: p.Name, KeyHash: p.KeySHA256}
	}
	return out
}
