package policy

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// A policy's decision depends only on its module, its data and the parts
// of the input it reads. When a module reads the input only through
// references whose paths are constant strings (input.claims.tcb.status, or
// input.claims.checks followed by an iteration), the decision for one
// input also holds for every input that agrees on those paths. Such
// decisions are kept, keyed by the module and data digests and the values
// at those paths, so that the same platform appraised again skips the Rego
// evaluation. Volatile claims such as the report data, which changes with
// every nonce, are then never part of the key unless the policy reads
// them.
//
// The analysis gives up, and every evaluation runs, when the module could
// read input in a way the references do not show: a with modifier, an
// import of input, or a nondeterministic built-in such as time.now_ns or
// http.send. It also skips the cache when the module reads the whole input
// or a whole top-level member such as input.claims, where decisions would
// never be reused.

// inputPaths returns the constant input paths module reads, shortest
// first and without paths inside another, and whether its decisions
// depend on those paths alone.
func inputPaths(module string) ([][]string, bool) {
	parsed, err := ast.ParseModule("policy.rego", module)
	if err != nil || parsed == nil {
		return nil, false
	}
	for _, imp := range parsed.Imports {
		if ref, ok := imp.Path.Value.(ast.Ref); ok && ref[0].Equal(ast.InputRootDocument) {
			return nil, false
		}
	}
	cacheable := true
	ast.WalkExprs(parsed, func(e *ast.Expr) bool {
		if len(e.With) > 0 {
			cacheable = false
		}
		return !cacheable
	})

	var paths [][]string
	ast.WalkRefs(parsed, func(ref ast.Ref) bool {
		if b, ok := ast.BuiltinMap[ref.String()]; ok && b.Nondeterministic {
			cacheable = false
		}
		if !ref[0].Equal(ast.InputRootDocument) {
			return false
		}
		var path []string
		for _, t := range ref[1:] {
			s, ok := t.Value.(ast.String)
			if !ok {
				break
			}
			path = append(path, string(s))
		}
		if len(path) < 2 {
			// The whole input or a whole top-level member such as
			// input.claims: the report data would be part of the key,
			// so no decision would ever be reused.
			cacheable = false
		}
		paths = append(paths, path)
		return false
	})
	if !cacheable {
		return nil, false
	}
	return outermost(paths), true
}

// outermost sorts paths and drops duplicates and paths below another path
// of the list, whose value already contains them.
func outermost(paths [][]string) [][]string {
	slices.SortFunc(paths, func(a, b []string) int {
		if c := len(a) - len(b); c != 0 {
			return c
		}
		return slices.Compare(a, b)
	})
	var out [][]string
	for _, p := range paths {
		covered := slices.ContainsFunc(out, func(q []string) bool {
			return len(q) <= len(p) && slices.Equal(q, p[:len(q)])
		})
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

func (in plainInput) decisionKey(p *prepared) ([sha256.Size]byte, error) {
	return decisionKey(p.key, p.paths, in)
}

// decisionKey returns the decision cache key of input for the prepared
// query whose cache key is query and whose module reads paths.
func decisionKey(query string, paths [][]string, input map[string]any) ([sha256.Size]byte, error) {
	h := sha256.New()
	h.Write([]byte(query))
	for _, p := range paths {
		h.Write(appendKeyPath(nil, p))
		v, ok := jsonvalue.Lookup(input, p...)
		if !ok {
			// An absent value differs from every JSON value, null too.
			h.Write([]byte{1})
			continue
		}
		// encoding/json writes map keys in sorted order, so equal values
		// give equal bytes.
		raw, err := json.Marshal(v)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		h.Write(raw)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key, nil
}

// decisionKey returns the decision cache key of the appraisal input for
// p from the JSON text at each path, without decoding it. Equal text
// decodes to equal values, so equal keys still mean equal values at every
// path. Equal values written differently, such as with other spacing, give
// different keys, which costs a Rego evaluation but never a wrong
// decision.
func (in *appraisalInput) decisionKey(p *prepared) ([sha256.Size]byte, error) {
	return textDecisionKey(p, func(path []string) ([]byte, bool, error) {
		switch path[0] {
		case "claims":
			v, ok := in.claims.Lookup(path[1:])
			return v, ok, nil
		case "config":
			v, ok := in.config.json.Lookup(path[1:])
			return v, ok, nil
		}
		return nil, false, nil
	})
}

// textDecisionKey returns the decision cache key for p from the JSON text
// that lookup gives at each path the module reads, or false when the
// input has nothing there.
func textDecisionKey(p *prepared, lookup func(path []string) ([]byte, bool, error)) ([sha256.Size]byte, error) {
	buf := make([]byte, 0, 1024)
	buf = append(buf, p.key...)
	for _, path := range p.paths {
		if len(path) == 0 {
			return [sha256.Size]byte{}, errors.New("the module reads the whole input, which has no decision key")
		}
		buf = appendKeyPath(buf, path)

		v, ok, err := lookup(path)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		if !ok {
			buf = append(buf, 1)
			continue
		}
		// JSON text never starts with the byte 1, so a value differs
		// from an absent one.
		buf = append(buf, v...)
	}
	return sha256.Sum256(buf), nil
}

// appendKeyPath appends path, between zero bytes, to a decision key.
func appendKeyPath(buf []byte, path []string) []byte {
	buf = append(buf, 0)
	for i, name := range path {
		if i > 0 {
			buf = append(buf, 0x1f)
		}
		buf = append(buf, name...)
	}
	return append(buf, 0)
}

// maxDecisions bounds the decisions kept.
const maxDecisions = 1024

// decisionCache keeps decisions by key, dropping the oldest when full. The
// zero value is ready to use.
type decisionCache struct {
	mu     sync.Mutex
	values map[[sha256.Size]byte]any
	order  [][sha256.Size]byte
}

func (c *decisionCache) get(key [sha256.Size]byte) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.values[key]
	return v, ok
}

func (c *decisionCache) put(key [sha256.Size]byte, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.values == nil {
		c.values = map[[sha256.Size]byte]any{}
	}
	if _, ok := c.values[key]; ok {
		return
	}
	if len(c.order) >= maxDecisions {
		delete(c.values, c.order[0])
		c.order = c.order[1:]
	}
	c.values[key] = v
	c.order = append(c.order, key)
}
