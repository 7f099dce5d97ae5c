package custody

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// highS returns the DER signature (r, n-s) for a secp256k1 DER signature
// (r, s): the same signature with its S value negated, which verifies by
// plain ECDSA but is not low S.
func highS(t *testing.T, der []byte) []byte {
	t.Helper()
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		t.Fatal(err)
	}
	sig.S.Sub(secp256k1.S256().N, sig.S)
	out, err := asn1.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// VerifySignature accepts only what the workload produces for a key type:
// the type's public key encoding and curve, and low S for secp256k1.
func TestVerifySignatureRejects(t *testing.T) {
	message := []byte("tx:0200000001")
	digest := sha256.Sum256(message)

	k1, _, err := generateKey(Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	k1Sig, err := k1.sign(message)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(Secp256k1, k1.public, message, k1Sig); err != nil {
		t.Fatalf("the workload's own secp256k1 signature: %v", err)
	}
	uncompressed := k1.k1.PubKey().SerializeUncompressed()

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384Public, err := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p384Sig, err := ecdsa.SignASN1(rand.Reader, p384, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	// The P-384 signature is valid under its own key, so only the type
	// check may reject it.
	if !ecdsa.VerifyASN1(&p384.PublicKey, digest[:], p384Sig) {
		t.Fatal("the P-384 signature does not verify")
	}

	cases := []struct {
		name      string
		typ       KeyType
		public    []byte
		signature []byte
		wantError string
	}{
		{"secp256k1 high S", Secp256k1, k1.public, highS(t, k1Sig), "low S"},
		{"secp256k1 uncompressed key", Secp256k1, uncompressed, k1Sig, "65 bytes"},
		{"P-384 key as ecdsa-p256", ECDSAP256, p384Public, p384Sig, "P-384"},
		{"secp256k1 key as ecdsa-p256", ECDSAP256, k1.public, k1Sig, "invalid ecdsa-p256 public key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifySignature(c.typ, c.public, message, c.signature)
			if err == nil {
				t.Fatal("VerifySignature accepted it")
			}
			if !strings.Contains(err.Error(), c.wantError) {
				t.Errorf("error %q does not contain %q", err, c.wantError)
			}
		})
	}

	// The high-S signature is otherwise valid, so only the S check
	// rejects it.
	parsed, err := secpecdsa.ParseDERSignature(highS(t, k1Sig))
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.Verify(digest[:], k1.k1.PubKey()) {
		t.Error("the high-S signature does not verify by plain ECDSA, so the case tests nothing")
	}
}
