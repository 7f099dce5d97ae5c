package cose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"

	gocose "github.com/veraison/go-cose"
)

// Sign1 is a decoded COSE_Sign1 message (RFC 9052, section 4.2).
type Sign1 struct {
	Message *gocose.Sign1Message
	// Tagged is true when the message carried CBOR tag 18.
	Tagged bool
	// Algorithm is the protected alg header.
	Algorithm gocose.Algorithm
}

// sign1TagPrefix is CBOR tag 18 followed by an array of four items.
var sign1TagPrefix = []byte{0xd2, 0x84}

// DecodeSign1 decodes a COSE_Sign1 message, tagged or untagged. The message
// must have a payload, a signature and a protected alg header. go-cose
// rejects duplicate header keys, indefinite lengths and trailing bytes.
func DecodeSign1(data []byte) (*Sign1, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("COSE_Sign1: %d bytes is too short", len(data))
	}
	var msg gocose.Sign1Message
	tagged := data[0] == sign1TagPrefix[0]
	if tagged {
		if err := msg.UnmarshalCBOR(data); err != nil {
			return nil, fmt.Errorf("COSE_Sign1: %w", err)
		}
	} else {
		var untagged gocose.UntaggedSign1Message
		if err := untagged.UnmarshalCBOR(data); err != nil {
			return nil, fmt.Errorf("COSE_Sign1: %w", err)
		}
		msg = gocose.Sign1Message(untagged)
	}
	if len(msg.Payload) == 0 {
		return nil, errors.New("COSE_Sign1: the payload is detached or empty")
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		return nil, fmt.Errorf("COSE_Sign1: protected alg header: %w", err)
	}
	if err := CheckCritical(msg.Headers.Protected); err != nil {
		return nil, err
	}
	return &Sign1{Message: &msg, Tagged: tagged, Algorithm: alg}, nil
}

// CheckCritical rejects a protected header whose crit parameter (label 2)
// lists a label other than alg. RFC 9052, section 3.1, requires a recipient
// to reject a message with a critical header parameter it does not process,
// and the verifiers process only alg. go-cose checks that each listed label
// is present but leaves its meaning to the application.
func CheckCritical(h gocose.ProtectedHeader) error {
	labels, err := h.Critical()
	if err != nil {
		return fmt.Errorf("COSE_Sign1: protected crit header: %w", err)
	}
	for _, label := range labels {
		if n, ok := label.(int64); ok && n == gocose.HeaderLabelAlgorithm {
			continue
		}
		return fmt.Errorf("COSE_Sign1: the protected crit header marks label %v as critical, but only alg (1) is processed, so the message is rejected. Request evidence whose protected header marks no other parameter critical", label)
	}
	return nil
}

// LooksLikeSign1 reports whether data starts as a COSE_Sign1 message: tag 18
// and a four-item array, or an untagged four-item array whose first item is
// a byte string (the protected header).
func LooksLikeSign1(data []byte) bool {
	if len(data) < 3 {
		return false
	}
	if data[0] == sign1TagPrefix[0] && data[1] == sign1TagPrefix[1] {
		return true
	}
	return data[0] == 0x84 && data[1]>>5 == 2
}

// ErrAlgorithm reports a signing algorithm outside the allow-list or one
// that does not match the key.
var ErrAlgorithm = errors.New("signing algorithm not allowed for this key")

// Verify checks the signature of s under key. Only ES256, ES384, ES512 with
// the matching NIST curve, PS256, PS384, PS512 with an RSA key of at least
// 2048 bits, and EdDSA with an Ed25519 key are accepted.
func (s *Sign1) Verify(key crypto.PublicKey) error {
	if err := checkAlgorithm(s.Algorithm, key); err != nil {
		return err
	}
	verifier, err := gocose.NewVerifier(s.Algorithm, key)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAlgorithm, err)
	}
	return s.Message.Verify(nil, verifier)
}

func checkAlgorithm(alg gocose.Algorithm, key crypto.PublicKey) error {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		want := map[gocose.Algorithm]elliptic.Curve{
			gocose.AlgorithmES256: elliptic.P256(),
			gocose.AlgorithmES384: elliptic.P384(),
			gocose.AlgorithmES512: elliptic.P521(),
		}[alg]
		if want == nil || k.Curve != want {
			return fmt.Errorf("%w: %s with a %s key", ErrAlgorithm, alg, k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		switch alg {
		case gocose.AlgorithmPS256, gocose.AlgorithmPS384, gocose.AlgorithmPS512:
		default:
			return fmt.Errorf("%w: %s with an RSA key", ErrAlgorithm, alg)
		}
	case ed25519.PublicKey:
		if alg != gocose.AlgorithmEdDSA {
			return fmt.Errorf("%w: %s with an Ed25519 key", ErrAlgorithm, alg)
		}
	default:
		return fmt.Errorf("%w: %s with a key of type %T", ErrAlgorithm, alg, key)
	}
	return nil
}
