package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// reasonsRule is the optional rule of a Cloister-dialect resource policy
// that explains a denial.
const reasonsRule = "reasons"

// reasonMembers are the members of a reason object, all strings.
var reasonMembers = []string{"rule", "claim", "value", "expected", "message"}

// ErrReasonsShape is the error of a resource policy whose reasons rule
// contains something other than reason objects with string members.
var ErrReasonsShape = errors.New("reasons must be a set of reason objects {rule, claim, value, expected, message} with string values")

// reasonsFix ends each error about a malformed reasons rule with what to
// write instead.
const reasonsFix = `; define reasons contains {"rule": ..., "claim": ..., "value": ..., "expected": ..., "message": ...} if ..., with every member a string (format numbers with sprintf("%v", [x])), or remove the reasons rule`

// ResourceDecision is the decision of a resource policy on one request.
type ResourceDecision struct {
	Allowed bool
	// Reasons is the policy's reasons set for a denied request, sorted by
	// rule and claim. It is empty when the request is allowed, when the
	// policy is a Trustee-dialect policy or defines no reasons rule, and
	// when ReasonsErr is set.
	Reasons []appraise.Reason
	// ReasonsErr is the error that evaluating the reasons rule of a
	// denying policy returned. The request stays denied.
	ReasonsErr error
}

// AuthorizeJSON is AllowJSON that also explains a denial: when allow
// denies and the module is a Cloister-dialect policy that defines the rule
// reasons, it evaluates reasons once over the same input. An allowed
// request costs what AllowJSON costs, because reasons is then not
// evaluated. A returned error means that allow could not be evaluated. An
// error from reasons leaves the request denied and is returned in
// ResourceDecision.ReasonsErr.
func (e *Engine) AuthorizeJSON(ctx context.Context, m Module, tokenJSON []byte, res Resource, query map[string][]string) (ResourceDecision, error) {
	token, err := jsonvalue.ParseEncodedObject(tokenJSON)
	if err != nil {
		return ResourceDecision{}, fmt.Errorf("policy %s: token claims: %w; pass the claim set of a verified token, a JSON object", m.Name, err)
	}
	allowed, p, in, err := e.allowObject(ctx, m, token, res, query)
	if err != nil {
		return ResourceDecision{}, err
	}
	if allowed {
		return ResourceDecision{Allowed: true}, nil
	}
	if p == nil || !p.definesReasons {
		// A Trustee-dialect policy, or one without a reasons rule.
		return ResourceDecision{}, nil
	}

	reasons, err := e.denyReasons(ctx, m, in)
	if err != nil {
		return ResourceDecision{ReasonsErr: err}, nil
	}
	return ResourceDecision{Reasons: reasons}, nil
}

// denyReasons evaluates the reasons rule of the Cloister-dialect resource
// policy m over in, the input of a request that allow denied.
func (e *Engine) denyReasons(ctx context.Context, m Module, in *tokenInput) ([]appraise.Reason, error) {
	rp, err := e.prepareEntry(ctx, m, reasonsRule, map[string]any{})
	if err != nil {
		return nil, err
	}
	// The decision key starts with the prepared query's key, which names
	// the rule, so reasons never share a key with allow.
	d, err := e.evaluate(ctx, m, rp, in, func(rs rego.ResultSet) (any, error) {
		reasons, _, err := readReasons(m, reasonsRule, ErrReasonsShape, rs)
		if err != nil {
			return nil, fmt.Errorf("%w%s", err, reasonsFix)
		}
		return reasons, nil
	})
	if errors.Is(err, ErrReasonsShape) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w; fix the reasons rule so that it evaluates without errors for this request, or remove it", err)
	}
	// A kept decision is shared, so each caller gets its own copy.
	return slices.Clone(d.([]appraise.Reason)), nil
}

// CheckReasons rejects a Cloister-dialect resource policy whose reasons
// rule can never be a set of reason objects with string members, by the
// types the Rego compiler infers. Examples are a set of strings, an object
// and a reason member that is a number. A member whose type is known only
// at evaluation, such as a value read from input, passes here and is
// checked when the policy denies a request. A policy without the rule, and
// a Trustee-dialect policy, pass.
func CheckReasons(m Module) error {
	dialect, err := DetectResourceDialect(m.Text)
	if err != nil {
		return fmt.Errorf("policy %s: %w", m.Name, err)
	}
	if dialect == TrusteeDialect || definesRule(m, reasonsRule) != nil {
		return nil
	}
	pkg, err := packageOf(m)
	if err != nil {
		return err
	}
	compiler, err := ast.CompileModules(map[string]string{m.Name + ".rego": m.Text})
	if err != nil {
		return fmt.Errorf("policy %s: %w", m.Name, err)
	}

	ref := ast.MustParseRef("data." + pkg + "." + reasonsRule)
	if err := checkReasonsType(compiler.TypeEnv.GetByRef(ref)); err != nil {
		return fmt.Errorf("policy %s: %w: %w%s", m.Name, ErrReasonsShape, err, reasonsFix)
	}
	return nil
}

// checkReasonsType returns an error when no value of type t is a set of
// reason objects. A union type passes when one of its members may be.
func checkReasonsType(t types.Type) error {
	return checkUnion(t, func(t types.Type) error {
		switch t := t.(type) {
		case *types.Set:
			return checkReasonType(t.Of())
		case *types.Array:
			for i := range t.Len() {
				if err := checkReasonType(t.Select(i)); err != nil {
					return err
				}
			}
			return checkReasonType(t.Dynamic())
		case *types.Function:
			return errors.New("reasons is a function; define it as a set rule without arguments")
		}
		return fmt.Errorf("reasons is of type %s", types.Sprint(t))
	})
}

// checkReasonType returns an error when no value of type t is a reason
// object.
func checkReasonType(t types.Type) error {
	return checkUnion(t, func(t types.Type) error {
		obj, ok := t.(*types.Object)
		if !ok {
			return fmt.Errorf("a reason is of type %s, not an object", types.Sprint(t))
		}
		for _, name := range reasonMembers {
			member := obj.Select(name)
			if member == nil {
				continue
			}
			err := checkUnion(member, func(t types.Type) error {
				switch t.(type) {
				case types.String, types.Null:
					return nil
				}
				return fmt.Errorf("reason member %q is of type %s, not a string", name, types.Sprint(t))
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// checkUnion applies check to t, or to each member of a union type t, and
// returns nil when one of them passes. The type any, an empty union, and a
// missing type pass, because their values are known only at evaluation.
func checkUnion(t types.Type, check func(types.Type) error) error {
	if named, ok := t.(*types.NamedType); ok {
		t = named.Type
	}
	if t == nil {
		// The compiler inferred no type.
		return nil
	}
	union, ok := t.(types.Any)
	if !ok {
		return check(t)
	}
	if len(union) == 0 {
		return nil
	}
	var first error
	for _, member := range union {
		err := check(member)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}
