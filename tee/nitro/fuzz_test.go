package nitro

import (
	"context"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// FuzzParseDocument checks that no input makes the parser or the verifier
// panic, and that a parsed document always has its required fields.
func FuzzParseDocument(f *testing.F) {
	for _, c := range corpus.Cases(f, "nitro") {
		data := c.EvidenceBytes(f)
		f.Add(data)
		f.Add(data[1:])
	}
	f.Add([]byte{0xd2, 0x84})
	v := &Verifier{}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseDocument(data)
		if err == nil {
			if doc.ModuleID == "" || doc.Digest != digestSHA384 || len(doc.PCRs) == 0 || len(doc.CABundle) == 0 {
				t.Fatalf("parsed document misses a required field: %+v", doc)
			}
		}
		v.Detect(data)
		v.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{})
	})
}
