package tpm

import (
	"context"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	pb "github.com/google/go-tpm-tools/proto/attest"
	tpmpb "github.com/google/go-tpm-tools/proto/tpm"
	"github.com/google/go-tpm/tpm2"
	"google.golang.org/protobuf/proto"

	"github.com/cloister-dev/cloister/attest"
)

// rsaAKPublic returns a TPMT_PUBLIC for key as a restricted RSASSA SHA-256
// signing key, the template of a go-tpm-tools AK.
func rsaAKPublic(key *rsa.PublicKey) []byte {
	pub := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgRSA,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
			UserWithAuth: true, Restricted: true, SignEncrypt: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Scheme: tpm2.TPMTRSAScheme{
				Scheme:  tpm2.TPMAlgRSASSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			KeyBits: 2048,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: key.N.Bytes()}),
	}
	return tpm2.Marshal(&pub)
}

// pbQuote signs q with rsaKey and returns it as a go-tpm-tools quote with
// q's SHA-256 PCR values.
func pbQuote(t *testing.T, q testQuote) *tpmpb.Quote {
	t.Helper()
	msg := marshalAttest(q)
	pcrs := map[uint32][]byte{}
	for i, v := range q.pcrs {
		pcrs[uint32(i)] = v
	}
	return &tpmpb.Quote{
		Quote:  msg,
		RawSig: signTPMT(t, rsaKey, q.scheme, msg),
		Pcrs:   &tpmpb.PCRs{Hash: tpmpb.HashAlgo_SHA256, Pcrs: pcrs},
	}
}

// attestationOf returns a go-tpm-tools attestation of rsaKey's AK with
// the given quotes.
func attestationOf(t *testing.T, quotes ...*tpmpb.Quote) *pb.Attestation {
	t.Helper()
	return &pb.Attestation{AkPub: rsaAKPublic(&rsaKey.PublicKey), Quotes: quotes}
}

func marshalAttestation(t *testing.T, a *pb.Attestation) []byte {
	t.Helper()
	data, err := proto.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestVerifyAttestationRejected(t *testing.T) {
	base := defaultTestQuote()
	later := defaultTestQuote()
	later.pcrs = append([][]byte{}, base.pcrs...)
	later.pcrs[7] = extend(later.pcrs[7], make([]byte, 32))

	tests := []struct {
		name        string
		attestation func(t *testing.T) *pb.Attestation
		wantKind    error
		wantField   string
		wantText    string
	}{
		{
			// Two quotes of one bank would report two values for a PCR,
			// and the claims could show only one of them.
			name: "two quotes of the SHA-256 bank",
			attestation: func(t *testing.T) *pb.Attestation {
				return attestationOf(t, pbQuote(t, base), pbQuote(t, later))
			},
			wantKind:  attest.ErrMalformed,
			wantField: "attestation.quotes[1].pcrs.hash",
			wantText:  "SHA-256 bank that quote 0 reports",
		},
		{
			name: "bytes after the AK public area",
			attestation: func(t *testing.T) *pb.Attestation {
				a := attestationOf(t, pbQuote(t, base))
				a.AkPub = append(a.AkPub, 0)
				return a
			},
			wantKind:  attest.ErrMalformed,
			wantField: "attestation.ak_pub",
			wantText:  "1 bytes follow",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := marshalAttestation(t, tt.attestation(t))
			opts := attest.Options{Collateral: pinnedSet(t, rsaKey.Public()), Nonce: base.nonce}
			_, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, opts)
			if err == nil {
				t.Fatal("Verify accepted the attestation")
			}
			if !errors.Is(err, tt.wantKind) {
				t.Errorf("error kind = %s, expected %v: %v", attest.KindName(err), tt.wantKind, err)
			}
			var e *attest.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *attest.Error", err)
			}
			if e.Field != tt.wantField {
				t.Errorf("error field = %q, expected %q", e.Field, tt.wantField)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

func TestVerifyAttestationPinned(t *testing.T) {
	q := defaultTestQuote()
	data := marshalAttestation(t, attestationOf(t, pbQuote(t, q)))
	opts := attest.Options{Collateral: pinnedSet(t, rsaKey.Public()), Nonce: q.nonce}
	c, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := c.Measurements["pcr7"]; !bytesEqual(got, q.pcrs[7]) {
		t.Errorf("pcr7 = %s, expected %x", got, q.pcrs[7])
	}
}
