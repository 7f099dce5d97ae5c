package token

import (
	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
)

// inspectAlgorithms are the algorithms Inspect accepts: every asymmetric
// JWS algorithm, because inspection decodes without verifying.
var inspectAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// Inspect decodes the token's header and claims without verifying them.
func (v Verifier) Inspect(data []byte) (any, error) {
	if v.is == nil {
		return nil, errNoIssuer
	}
	tok, err := Parse(data, inspectAlgorithms)
	if err != nil {
		return nil, attest.Malformed("token", "invalid "+v.is.service+" token", err)
	}
	header := map[string]any{"alg": tok.Header.Algorithm, "kid": tok.Header.KeyID}
	for k, val := range tok.Header.ExtraHeaders {
		if k != "x5c" {
			header[string(k)] = val
		}
	}
	if certs, err := headerCertificates(tok); err == nil && len(certs) > 0 {
		var subjects []string
		for _, c := range certs {
			subjects = append(subjects, c.Subject.String())
		}
		header["x5c_subjects"] = subjects
	}
	return map[string]any{"header": header, "claims": tok.Claims, "signature_valid": "not checked"}, nil
}
