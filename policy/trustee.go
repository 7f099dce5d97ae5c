package policy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// ResourceDialect names the input a resource policy module reads.
//
// A Cloister policy reads {"token": the EAR claims, "resource": {"path",
// "repository", "type", "tag"}, "query": {"<name>": ["<value>", ...]}}.
//
// A Trustee policy, as Trustee's KBS v0.21.0 evaluates it, reads the EAR
// claims as input, so the CPU appraisal is at input.submods.cpu0, and
// {"plugin": "resource", "resource-path": ["<repository>", "<type>",
// "<tag>"], "query": {"<name>": "<value>"}} as data. Trustee evaluates the
// rule data.policy.allow; Cloister evaluates allow in the package the
// module declares, which Trustee's policies declare as "policy".
type ResourceDialect string

// The resource policy dialects.
const (
	CloisterDialect ResourceDialect = "cloister"
	TrusteeDialect  ResourceDialect = "trustee"
)

// Trustee's data members, which a Trustee policy reads at data.<name>.
const (
	trusteePlugin       = "plugin"
	trusteeResourcePath = "resource-path"
	trusteeQuery        = "query"
)

// trusteeAllowQuery evaluates a Trustee policy from one combined input,
// {"claims", "plugin", "resource-path", "query"}: the with modifiers move
// the claims to input and the rest to data, so that one prepared query
// serves every request.
const trusteeAllowQuery = `allow with input as input.claims with data.plugin as input.plugin with data["resource-path"] as input["resource-path"] with data.query as input.query`

// cloisterInputMembers are the top-level members of a Cloister policy's
// input.
var cloisterInputMembers = map[string]bool{"token": true, "resource": true, "query": true}

// DetectResourceDialect returns the dialect of a resource policy module
// from the references its rules and imports make. A reference to
// input.<member> other than token, resource and query, or to data.plugin,
// data["resource-path"] or data.query, is Trustee's; input.token,
// input.resource and input.query are Cloister's. A module that reads
// neither is a Cloister policy, and one that reads both is an error,
// because no input satisfies it.
func DetectResourceDialect(module string) (ResourceDialect, error) {
	parsed, err := ast.ParseModuleWithOpts("resource-policy.rego", module, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return "", fmt.Errorf("resource policy does not parse: %w", err)
	}
	if parsed == nil {
		return "", errors.New("resource policy is empty")
	}

	trustee, cloister := map[string]bool{}, map[string]bool{}
	visit := func(ref ast.Ref) bool {
		name, isTrustee, ok := classifyRef(ref)
		switch {
		case !ok:
		case isTrustee:
			trustee[name] = true
		default:
			cloister[name] = true
		}
		return false
	}
	for _, imp := range parsed.Imports {
		if ref, ok := imp.Path.Value.(ast.Ref); ok {
			visit(ref)
		}
	}
	for _, rule := range parsed.Rules {
		ast.WalkRefs(rule, visit)
	}

	switch {
	case len(trustee) > 0 && len(cloister) > 0:
		return "", fmt.Errorf("resource policy reads both Trustee's input (%s) and Cloister's (%s); read either the EAR claims at input and the request at data.plugin, data[\"resource-path\"] and data.query (Trustee), or input.token, input.resource and input.query (Cloister)",
			sortedKeys(trustee), sortedKeys(cloister))
	case len(trustee) > 0:
		return TrusteeDialect, nil
	}
	return CloisterDialect, nil
}

// classifyRef returns the name of an input or data member that ref reads,
// and whether that member belongs to Trustee's input. ok is false for
// references that neither dialect decides, such as data.<package> or
// input with a variable key.
func classifyRef(ref ast.Ref) (name string, isTrustee, ok bool) {
	if len(ref) < 2 {
		return "", false, false
	}
	key, isString := ref[1].Value.(ast.String)
	if !isString {
		return "", false, false
	}
	member := string(key)
	switch {
	case ref[0].Equal(ast.InputRootDocument):
		return "input." + member, !cloisterInputMembers[member], true
	case ref[0].Equal(ast.DefaultRootDocument):
		if member == trusteePlugin || member == trusteeResourcePath || member == trusteeQuery {
			return fmt.Sprintf("data[%q]", member), true, true
		}
	}
	return "", false, false
}

func sortedKeys(set map[string]bool) string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// allowTrustee evaluates a Trustee policy's prepared query q: the token
// claims as input, and Trustee's plugin, resource path and query as data.
func allowTrustee(ctx context.Context, m Module, q rego.PreparedEvalQuery, token map[string]any, res Resource, query map[string][]string) (bool, error) {
	path := []string{res.Repository, res.Type, res.Tag}
	if res.Path != "" {
		path = strings.Split(res.Path, "/")
	}
	// Trustee decodes the query string into one string per name; Cloister
	// passes the last value of a repeated name.
	single := make(map[string]any, len(query))
	for name, values := range query {
		if len(values) > 0 {
			single[name] = values[len(values)-1]
		}
	}
	pathValues := make([]any, len(path))
	for i, segment := range path {
		pathValues[i] = segment
	}

	var claims any
	if token != nil {
		claims = token
	}
	input := map[string]any{
		"claims":            claims,
		trusteePlugin:       "resource",
		trusteeResourcePath: pathValues,
		trusteeQuery:        single,
	}
	rs, err := q.Eval(ctx, rego.EvalParsedInput(ast.LazyObject(input)))
	if err != nil {
		return false, fmt.Errorf("policy %s: evaluation failed: %w", m.Name, err)
	}
	return allowed(rs), nil
}

// allowed reads the result of an allow query: only a single true permits,
// and undefined or any other value denies.
func allowed(rs rego.ResultSet) bool {
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return false
	}
	allow, ok := rs[0].Expressions[0].Value.(bool)
	return ok && allow
}
