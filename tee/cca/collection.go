package cca

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/cloister-dev/cloister/internal/cose"
)

// CBOR tag and map keys of the CCA attestation token collection.
const (
	collectionTag     = 399
	platformTokenKey  = 44234
	realmDelegatedKey = 44241
)

// collection is the decoded token collection: the two COSE_Sign1 messages,
// still encoded.
type collection struct {
	Platform []byte
	Realm    []byte
}

// collectionPrefix is the encoding of CBOR tag 399.
var collectionPrefix = []byte{0xd9, 0x01, 0x8f}

// parseCollection decodes the tag 399 map. It must hold exactly the
// platform token (44234) and the realm token (44241), each a byte string.
func parseCollection(data []byte) (*collection, error) {
	var tag cbor.RawTag
	if err := cose.UnmarshalTagged(data, &tag); err != nil {
		return nil, fmt.Errorf("token collection: %w", err)
	}
	if tag.Number != collectionTag {
		return nil, fmt.Errorf("token collection: CBOR tag %d, want %d", tag.Number, collectionTag)
	}
	var m map[int64]cbor.RawMessage
	if err := cose.Unmarshal(tag.Content, &m); err != nil {
		return nil, fmt.Errorf("token collection: %w", err)
	}
	if len(m) != 2 {
		return nil, fmt.Errorf("token collection: %d entries, want the platform token (%d) and the realm token (%d)", len(m), platformTokenKey, realmDelegatedKey)
	}
	c := &collection{}
	for key, out := range map[int64]*[]byte{platformTokenKey: &c.Platform, realmDelegatedKey: &c.Realm} {
		raw, ok := m[key]
		if !ok {
			return nil, fmt.Errorf("token collection: entry %d missing", key)
		}
		if err := cose.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("token collection: entry %d: want a byte string: %w", key, err)
		}
	}
	return c, nil
}
