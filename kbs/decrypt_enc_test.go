package kbs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
)

// rsaJWE builds a JWE to priv by hand, with header as the protected
// header and cek, of any length, as the AES-GCM content key.
func rsaJWE(t *testing.T, priv *rsa.PrivateKey, header string, cek []byte) *Response {
	t.Helper()
	encryptedKey, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	protected := b64.EncodeToString([]byte(header))
	block, err := aes.NewCipher(cek)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, 12)
	sealed := gcm.Seal(nil, iv, []byte("resource"), []byte(protected))
	n := len(sealed) - gcm.Overhead()
	return &Response{Protected: protected, EncryptedKey: b64.EncodeToString(encryptedKey), IV: b64.EncodeToString(iv),
		Ciphertext: b64.EncodeToString(sealed[:n]), Tag: b64.EncodeToString(sealed[n:])}
}

// Decrypt opens only A256GCM content with a 32-byte content key, the one
// content encryption of the KBS protocol. A header with another enc, or a
// shorter key that AES-GCM would also take, is rejected.
func TestDecryptRequiresA256GCM(t *testing.T) {
	key, err := GenerateKey("RSA")
	if err != nil {
		t.Fatal(err)
	}
	priv := key.(*rsa.PrivateKey)
	tests := []struct {
		name, header string
		cekSize      int
		wantErr      string
	}{
		{"enc A128GCM", `{"alg":"RSA-OAEP-256","enc":"A128GCM"}`, 16, `enc "A128GCM"`},
		{"enc A256CBC-HS512", `{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512"}`, 32, `enc "A256CBC-HS512"`},
		{"16-byte key under A256GCM", `{"alg":"RSA-OAEP-256","enc":"A256GCM"}`, 16, "content key is 16 bytes, expected 32"},
		{"24-byte key under A256GCM", `{"alg":"RSA-OAEP-256","enc":"A256GCM"}`, 24, "content key is 24 bytes, expected 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decrypt(priv, rsaJWE(t, priv, tt.header, make([]byte, tt.cekSize)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Decrypt error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}

	got, err := Decrypt(priv, rsaJWE(t, priv, `{"alg":"RSA-OAEP-256","enc":"A256GCM"}`, make([]byte, 32)))
	if err != nil {
		t.Fatalf("A256GCM with a 32-byte key: %v", err)
	}
	if string(got) != "resource" {
		t.Errorf("plaintext = %q", got)
	}
}
