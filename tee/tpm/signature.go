package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"

	"github.com/cloister-dev/cloister/attest"
)

// Signature is a quote signature: its scheme, its hash and the signature
// value. ParseSignature decodes the TPMT_SIGNATURE form, and evidence that
// carries a bare RSA signature builds one with RSASSA.
type Signature struct {
	// Scheme is TPM_ALG_RSASSA, TPM_ALG_RSAPSS or TPM_ALG_ECDSA.
	Scheme tpm2.TPMAlgID
	Hash   crypto.Hash
	// RSA is the RSA signature. R and S are the ECDSA one.
	RSA  []byte
	R, S *big.Int
}

// RSASSA returns an RSASSA-PKCS1-v1_5 signature over hash.
func RSASSA(hash crypto.Hash, sig []byte) Signature {
	return Signature{Scheme: tpm2.TPMAlgRSASSA, Hash: hash, RSA: sig}
}

// ParseSignature decodes a TPMT_SIGNATURE. Only the schemes a TPM uses for
// quotes are accepted, with SHA-256, SHA-384 or SHA-512: a SHA-1 signature
// would let a collision turn one signed quote into another.
func ParseSignature(data []byte) (Signature, error) {
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](data)
	if err != nil {
		return Signature{}, attest.Malformed("TPMT_SIGNATURE", "cannot be decoded", err)
	}

	var out Signature
	var hashAlg tpm2.TPMIAlgHash
	switch sig.SigAlg {
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		var rsaSig *tpm2.TPMSSignatureRSA
		if sig.SigAlg == tpm2.TPMAlgRSASSA {
			rsaSig, err = sig.Signature.RSASSA()
		} else {
			rsaSig, err = sig.Signature.RSAPSS()
		}
		if err != nil {
			return Signature{}, attest.Malformed("TPMT_SIGNATURE", "contains no RSA signature", err)
		}
		hashAlg, out.RSA = rsaSig.Hash, rsaSig.Sig.Buffer
	case tpm2.TPMAlgECDSA:
		eccSig, err := sig.Signature.ECDSA()
		if err != nil {
			return Signature{}, attest.Malformed("TPMT_SIGNATURE", "contains no ECDSA signature", err)
		}
		hashAlg = eccSig.Hash
		out.R = new(big.Int).SetBytes(eccSig.SignatureR.Buffer)
		out.S = new(big.Int).SetBytes(eccSig.SignatureS.Buffer)
	default:
		return Signature{}, attest.Errorf(attest.ErrUnsupported, "TPMT_SIGNATURE.sigAlg", "signature scheme %#04x is not RSASSA, RSAPSS or ECDSA", uint16(sig.SigAlg)).
			WithFix("create the AK with an RSASSA, RSAPSS or ECDSA signing scheme")
	}

	// The encoded size is sigAlg and hash, then one TPM2B for RSA or two
	// for ECDSA, each a 2-byte size and its bytes.
	size := 2 + 2 + 2 + len(out.RSA)
	if sig.SigAlg == tpm2.TPMAlgECDSA {
		eccSig, _ := sig.Signature.ECDSA()
		size = 2 + 2 + 2 + len(eccSig.SignatureR.Buffer) + 2 + len(eccSig.SignatureS.Buffer)
	}
	if size != len(data) {
		return Signature{}, attest.Malformed("TPMT_SIGNATURE", fmt.Sprintf("%d bytes follow the %d-byte structure", len(data)-size, size), nil)
	}
	out.Scheme = sig.SigAlg

	if out.Hash, err = signatureHash(hashAlg); err != nil {
		return Signature{}, err
	}
	return out, nil
}

// signatureHash converts a TPM hash algorithm that may sign a quote.
func signatureHash(alg tpm2.TPMIAlgHash) (crypto.Hash, error) {
	switch alg {
	case tpm2.TPMAlgSHA256:
		return crypto.SHA256, nil
	case tpm2.TPMAlgSHA384:
		return crypto.SHA384, nil
	case tpm2.TPMAlgSHA512:
		return crypto.SHA512, nil
	}
	return 0, attest.Errorf(attest.ErrUnsupported, "TPMT_SIGNATURE.hash", "hash algorithm %#04x is not SHA-256, SHA-384 or SHA-512", uint16(alg)).
		WithFix("quote with an AK whose scheme uses SHA-256 or stronger")
}

// VerifySignature checks sig over message under the public key pub.
func VerifySignature(pub crypto.PublicKey, message []byte, sig Signature) error {
	if !sig.Hash.Available() {
		return attest.Errorf(attest.ErrUnsupported, "TPMT_SIGNATURE.hash", "hash %v is not available", sig.Hash)
	}
	h := sig.Hash.New()
	h.Write(message)
	digest := h.Sum(nil)

	var err error
	switch key := pub.(type) {
	case *rsa.PublicKey:
		switch sig.Scheme {
		case tpm2.TPMAlgRSASSA:
			err = rsa.VerifyPKCS1v15(key, sig.Hash, digest, sig.RSA)
		case tpm2.TPMAlgRSAPSS:
			err = rsa.VerifyPSS(key, sig.Hash, digest, sig.RSA, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		default:
			return schemeMismatch("RSA", sig.Scheme)
		}
	case *ecdsa.PublicKey:
		if sig.Scheme != tpm2.TPMAlgECDSA {
			return schemeMismatch("ECDSA", sig.Scheme)
		}
		if sig.R == nil || sig.S == nil || !ecdsa.Verify(key, digest, sig.R, sig.S) {
			err = errors.New("ECDSA verification failed")
		}
	default:
		return attest.Errorf(attest.ErrUnsupported, "AK", "key type %T is neither RSA nor ECDSA", pub)
	}
	if err != nil {
		return &attest.Error{Kind: attest.ErrSignature, Field: "quote signature", Err: err,
			Reason: "the quote signature does not verify under the attestation key, so the TPMS_ATTEST was altered or another key signed it",
			Fix:    "check that the quote and the AK belong together and that neither was modified"}
	}
	return nil
}

func schemeMismatch(keyType string, scheme tpm2.TPMAlgID) error {
	return attest.Errorf(attest.ErrSignature, "TPMT_SIGNATURE.sigAlg", "signature scheme %#04x does not fit the %s attestation key", uint16(scheme), keyType).
		WithFix("check that the quote was signed by this AK")
}
