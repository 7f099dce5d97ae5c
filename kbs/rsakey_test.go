package kbs

import (
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"strings"
	"testing"
)

// An RSA tee-pubkey that RSA-OAEP-256 cannot encrypt to is rejected when
// it is decoded, so that /attest never issues a token for a key whose JWE
// the resource endpoint would then fail to build.
func TestRSAPublicKeyRejectsUnusableKeys(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, minRSABits)
	if err != nil {
		t.Fatal(err)
	}
	modulus := priv.N.Bytes()
	even := new(big.Int).Lsh(big.NewInt(1), minRSABits).Bytes()
	huge := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), maxRSABits+1), big.NewInt(1)).Bytes()
	tests := []struct {
		name    string
		n, e    []byte
		wantErr string
	}{
		{"exponent above 2^31-1", modulus, []byte{0x80, 0, 0, 1}, "exponent 2147483649 is invalid"},
		{"exponent 2^32-1", modulus, []byte{0xff, 0xff, 0xff, 0xff}, "exponent 4294967295 is invalid"},
		{"even modulus", even, []byte{1, 0, 1}, "modulus is even"},
		{"modulus over the maximum", huge, []byte{1, 0, 1}, "at most 16384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := TEEPubKey{Kty: "RSA", Alg: AlgRSAOAEP256, N: b64.EncodeToString(tt.n), E: b64.EncodeToString(tt.e)}
			_, err := key.RSAPublicKey()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("RSAPublicKey error = %v, want one containing %q", err, tt.wantErr)
			}
			if err := checkTEEKey(key); err == nil {
				t.Error("checkTEEKey accepted the key")
			}
		})
	}

	// The largest accepted exponent still encrypts.
	key := TEEPubKey{Kty: "RSA", Alg: AlgRSAOAEP256, N: b64.EncodeToString(modulus), E: b64.EncodeToString([]byte{0x7f, 0xff, 0xff, 0xff})}
	if err := checkTEEKey(key); err != nil {
		t.Fatalf("exponent 2^31-1: %v", err)
	}
	if _, err := Encrypt(key, []byte("secret")); err != nil {
		t.Errorf("Encrypt to exponent 2^31-1: %v", err)
	}
}
