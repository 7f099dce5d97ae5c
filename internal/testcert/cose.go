package testcert

import (
	"crypto"
	"crypto/rand"
	"testing"

	"github.com/fxamacker/cbor/v2"
	gocose "github.com/veraison/go-cose"
)

// CBOR encodes v with the default options of fxamacker/cbor.
func CBOR(t testing.TB, v any) []byte {
	t.Helper()
	data, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Sign1 signs payload with key under alg as a COSE_Sign1 message whose
// protected header holds only the algorithm. tagged selects the tagged
// form (CBOR tag 18) or the untagged one.
func Sign1(t testing.TB, key crypto.Signer, alg gocose.Algorithm, payload []byte, tagged bool) []byte {
	t.Helper()
	signer, err := gocose.NewSigner(alg, key)
	if err != nil {
		t.Fatal(err)
	}
	headers := gocose.Headers{Protected: gocose.ProtectedHeader{gocose.HeaderLabelAlgorithm: alg}}
	var out []byte
	if tagged {
		out, err = gocose.Sign1(rand.Reader, signer, headers, payload, nil)
	} else {
		out, err = gocose.Sign1Untagged(rand.Reader, signer, headers, payload, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}
