package policy

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// AllowJSON is Allow for token claims given as JSON text, which it indexes
// with jsonvalue.ParseEncodedObject. A Cloister-dialect module that reads
// the token only at constant paths gets only the token members it reads,
// and its decision key is built from the text at those paths, so the claim
// set is not decoded as a whole. A Trustee-dialect module gets the whole
// claim set decoded. AllowJSON does not change tokenJSON, and the decision
// it caches holds no reference to it.
//
// tokenJSON must be valid JSON, as the claim set that
// ear.Verifier.VerifyText returns is. Only that it is an object is checked,
// because validating a claim set of a few kilobytes costs about as much as
// the rest of the decision. Check text from elsewhere with json.Valid
// first.
func (e *Engine) AllowJSON(ctx context.Context, m Module, tokenJSON []byte, res Resource, query map[string][]string) (bool, error) {
	token, err := jsonvalue.ParseEncodedObject(tokenJSON)
	if err != nil {
		return false, fmt.Errorf("policy %s: token claims: %w; pass the claim set of a verified token, a JSON object", m.Name, err)
	}
	allowed, _, _, err := e.allowObject(ctx, m, token, res, query)
	return allowed, err
}

// allowObject is AllowJSON for token claims already indexed. For a
// Cloister-dialect policy it also returns the prepared allow query and the
// input, so that AuthorizeJSON evaluates reasons without building them
// again. Both are nil for a Trustee-dialect policy.
func (e *Engine) allowObject(ctx context.Context, m Module, token *jsonvalue.Object, res Resource, query map[string][]string) (bool, *prepared, *tokenInput, error) {
	if token == nil {
		return false, nil, nil, fmt.Errorf("policy %s: token claims missing (nil index); pass the index that jsonvalue.ParseEncodedObject returns", m.Name)
	}
	p, err := e.prepareEntry(ctx, m, "allow", map[string]any{})
	if err != nil {
		return false, nil, nil, err
	}
	if p.dialect == TrusteeDialect {
		claims, err := jsonvalue.DecodeObject(token.Text())
		if err != nil {
			return false, nil, nil, fmt.Errorf("policy %s: token claims: %w", m.Name, err)
		}
		allowed, err := allowTrustee(ctx, m, p.query, claims, res, query)
		return allowed, nil, nil, err
	}

	request, err := requestInput(res, query)
	if err != nil {
		return false, nil, nil, err
	}
	in := &tokenInput{token: token, request: request}
	allowed, err := e.allow(ctx, m, p, in)
	if err != nil {
		return false, nil, nil, err
	}
	return allowed, p, in, nil
}

// tokenInput is the resource policy input {"resource", "query", "token"}
// with the token claims as JSON text, of which only what is needed is
// decoded.
type tokenInput struct {
	token *jsonvalue.Object
	// request holds the members resource and query as JSON values.
	request map[string]any
}

// decisionKey returns the decision cache key of the input for p: the text
// at each token path, and the encoding of each other path's value, as
// plainInput's key takes it. Equal bytes at a path still mean equal values
// there, so keys of the two input types for one module never match for
// different inputs.
func (in *tokenInput) decisionKey(p *prepared) ([sha256.Size]byte, error) {
	return textDecisionKey(p, func(path []string) ([]byte, bool, error) {
		if path[0] == "token" {
			v, ok := in.token.Lookup(path[1:])
			return v, ok, nil
		}
		value, found := jsonvalue.Lookup(in.request, path...)
		if !found {
			return nil, false, nil
		}
		raw, err := json.Marshal(value)
		return raw, err == nil, err
	})
}

// value decodes the input for Rego, with numbers kept as written, and only
// the token members a cacheable module reads (see readMembers).
func (in *tokenInput) value(p *prepared) (map[string]any, error) {
	token, err := readMembers(p, "token", in.token)
	if err != nil {
		return nil, err
	}
	return map[string]any{"resource": in.request["resource"], "query": in.request["query"], "token": token}, nil
}
