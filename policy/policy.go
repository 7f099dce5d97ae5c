// Package policy appraises verified claims and authorizes secret releases
// with Rego policies evaluated by the Open Policy Agent (v1 Rego syntax).
//
// An attestation policy defines the set data.<package>.deny of reason
// objects {rule, claim, value, expected, message}; evidence is accepted
// when the set is empty. Its input is {"claims": attest.Claims as JSON,
// "config": {"allow_emulated", "tcb_statuses",
// "min_tcb_evaluation_data_number", "max_vmpl"}}, and data.reference_values
// maps reference value names ("snp.measurement") to accepted values.
//
// A resource policy defines data.<package>.allow (a boolean; anything else
// denies). Its input is {"token": the EAR claims, "resource": {"path",
// "repository", "type", "tag"}, "query": {...}}, unless the module reads
// Trustee's input (input.submods, data.plugin): then it is evaluated as
// Trustee's KBS does, with the claims as input and the request as data (see
// ResourceDialect). A Cloister-dialect resource policy may also define
// data.<package>.reasons, a set of reason objects of the same shape as
// deny's. Engine.AuthorizeJSON evaluates it only when allow denies, to
// explain the denial. Trustee-dialect policies give no reasons.
//
// Queries are prepared once per policy digest and reference-value digest
// and reused for every request until either changes.
package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

//go:embed default_attestation.rego
var defaultAttestationBody string

//go:embed default_resource.rego
var defaultResourceModule string

// Package names of the default modules.
const (
	AttestationPackage = "cloister.appraisal"
	ResourcePackage    = "cloister.resource"
)

// Module is one Rego policy module.
type Module struct {
	// Name identifies the policy in results and logs ("default-snp").
	Name string
	// Text is the Rego source.
	Text string
}

// Digest returns the hex SHA-256 of the module text, which identifies the
// policy version.
func (m Module) Digest() string {
	if d, ok := digests.Load(m.Text); ok {
		return d.(string)
	}
	sum := sha256.Sum256([]byte(m.Text))
	d := hex.EncodeToString(sum[:])
	if digestCount.Add(1) > maxDigests {
		// Policies change rarely; a cache this full means many uploads,
		// and starting over is cheaper than tracking use.
		digests.Clear()
		digestCount.Store(1)
	}
	digests.Store(m.Text, d)
	return d
}

// digests caches module digests by text: every attestation needs the
// digest of its policy several times (the query cache key, the policy ID
// and the digest in the token and the audit record).
var (
	digests     sync.Map
	digestCount atomic.Int64
)

// maxDigests bounds the digest cache.
const maxDigests = 256

// ID returns "name@sha256:digest", the ear.appraisal-policy-id of results
// this module appraised.
func (m Module) ID() string { return m.Name + "@sha256:" + m.Digest() }

// attestationTEEs are the TEE names of the claims the service appraises,
// which name their attestation policies: the verifiers' TEEs, the
// composite of a CPU and its devices (tee/composite) and the KBS sample
// TEE. The sample TEE is written out because this package does not import
// the KBS.
var attestationTEEs = []attest.TEE{
	attest.TEESNP, attest.TEETDX, attest.TEESGX, attest.TEENitro, attest.TEETPM, attest.TEEAzureVTPM,
	attest.TEENVGPU, attest.TEEPSA, attest.TEECCA, attest.TEEGCPToken, attest.TEEMAAToken, attest.TEEITAToken,
	attest.TEEComposite, "sample",
}

// AttestationTEEs returns the TEE names that select an attestation policy.
func AttestationTEEs() []attest.TEE { return slices.Clone(attestationTEEs) }

// IsAttestationTEE reports whether tee selects an attestation policy.
func IsAttestationTEE(tee string) bool { return slices.Contains(attestationTEEs, attest.TEE(tee)) }

// DefaultAttestation returns the default attestation policy for tee. It
// rejects emulated TEEs (unless Config.AllowEmulated), debug TEEs, TCB
// statuses outside the accepted set, required checks that did not run,
// trust anchors that are published test keys, and a measurement that is
// not among the reference values <tee>.measurement (also when none are
// registered). Host data, chip ID and named measurements are compared with
// <tee>.host_data, <tee>.chip_id and <tee>.<name> when those exist, and a
// registered <tee>.<name> that names no measurement of the claims rejects.
func DefaultAttestation(tee attest.TEE) Module {
	if m, ok := defaultModules.Load(tee); ok {
		return m.(Module)
	}
	header := fmt.Sprintf("package %s\n\n# tee is the TEE whose evidence this policy appraises.\ntee := %q\n\n", AttestationPackage, string(tee))
	m := Module{Name: "default-" + string(tee), Text: header + defaultAttestationBody}
	defaultModules.Store(tee, m)
	return m
}

// defaultModules holds the default attestation module of each TEE seen,
// so that the text is built once, not for every attestation.
var defaultModules sync.Map

// DefaultResource returns the default resource policy: any result whose
// primary TEE is affirming may read any secret.
func DefaultResource() Module {
	return Module{Name: "default-resource", Text: defaultResourceModule}
}

// Config carries the service's appraisal switches into the policy input.
type Config struct {
	AllowEmulated bool     `json:"allow_emulated"`
	TCBStatuses   []string `json:"tcb_statuses,omitempty"`
	// MinTCBEvaluationDataNumber is the lowest accepted Intel TCB
	// evaluation data number of SGX and TDX claims, also those of
	// composite evidence and tokens, as in appraise.Options. 0 sets no
	// minimum.
	MinTCBEvaluationDataNumber uint32 `json:"min_tcb_evaluation_data_number,omitempty"`
	// MaxVMPL is the highest accepted VMPL of SEV-SNP claims, also those
	// of composite evidence and MAA tokens, as in appraise.Options. Nil
	// accepts any VMPL.
	MaxVMPL *uint32 `json:"max_vmpl,omitempty"`
}

// Engine evaluates policies. It is safe for concurrent use.
type Engine struct {
	mu        sync.Mutex
	cache     map[string]*prepared
	decisions decisionCache
	// config is the input member of the last Config appraised with, which
	// a service passes unchanged on every request.
	config atomic.Pointer[configInput]
}

// prepared is a query ready for evaluation, with what the decision cache
// needs to know of its module.
type prepared struct {
	query rego.PreparedEvalQuery
	// key identifies the module, rule and data.
	key string
	// paths are the input paths the module reads, when cacheable.
	paths     [][]string
	cacheable bool
	// dialect is the input shape of a resource policy (rule allow).
	dialect ResourceDialect
	// definesReasons is set for a Cloister-dialect resource policy (rule
	// allow) whose module defines the rule reasons.
	definesReasons bool
}

// maxCached bounds the prepared queries kept; the cache is cleared when
// it is full, which happens only when policies or reference values change
// that often.
const maxCached = 64

// NewEngine returns an Engine with an empty cache.
func NewEngine() *Engine { return &Engine{cache: map[string]*prepared{}} }

var packageRE = regexp.MustCompile(`(?m)^\s*package\s+([A-Za-z_][A-Za-z0-9_.]*)\s*$`)

// packageOf returns the package path a module declares.
func packageOf(m Module) (string, error) {
	match := packageRE.FindStringSubmatch(m.Text)
	if match == nil {
		return "", fmt.Errorf("policy %s: no package declaration", m.Name)
	}
	return match[1], nil
}

func (e *Engine) prepare(ctx context.Context, m Module, rule string, data map[string]any) (rego.PreparedEvalQuery, error) {
	p, err := e.prepareEntry(ctx, m, rule, data)
	if err != nil {
		return rego.PreparedEvalQuery{}, err
	}
	return p.query, nil
}

// prepareEntry returns the prepared query of m's rule over data, from the
// cache when the module, rule and data are unchanged.
func (e *Engine) prepareEntry(ctx context.Context, m Module, rule string, data map[string]any) (*prepared, error) {
	if data != nil && len(data) == 0 {
		return e.prepareKeyed(ctx, m, rule, data, emptyDataDigest)
	}
	dataJSON, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	dataSum := sha256.Sum256(dataJSON)
	return e.prepareKeyed(ctx, m, rule, data, "json:"+hex.EncodeToString(dataSum[:]))
}

// emptyDataDigest is the digest prepareEntry computes for empty data. It
// is computed once, because every resource request looks up its allow
// query with empty data.
var emptyDataDigest = func() string {
	sum := sha256.Sum256([]byte("{}"))
	return "json:" + hex.EncodeToString(sum[:])
}()

// referenceValuesDigest identifies the data {"reference_values": refs}
// for prepareKeyed without encoding refs as JSON. Different maps give
// different digests, also where JSON would not tell them apart: a nil and
// an empty list of values, or strings that differ only in invalid UTF-8.
func referenceValuesDigest(refs map[string][]string) string {
	buf := make([]byte, 0, 512)
	for _, name := range slices.Sorted(maps.Keys(refs)) {
		buf = binary.AppendUvarint(buf, uint64(len(name)))
		buf = append(buf, name...)

		values := refs[name]
		if values == nil {
			buf = append(buf, 0)
			continue
		}
		buf = binary.AppendUvarint(buf, uint64(len(values))+1)
		for _, v := range values {
			buf = binary.AppendUvarint(buf, uint64(len(v)))
			buf = append(buf, v...)
		}
	}
	sum := sha256.Sum256(buf)
	return "reference_values:" + hex.EncodeToString(sum[:])
}

// prepareKeyed is prepareEntry for data that dataDigest identifies among
// all data prepared with m's rule.
func (e *Engine) prepareKeyed(ctx context.Context, m Module, rule string, data map[string]any, dataDigest string) (*prepared, error) {
	key := m.Digest() + "/" + rule + "/" + dataDigest

	e.mu.Lock()
	p, ok := e.cache[key]
	e.mu.Unlock()
	if ok {
		return p, nil
	}

	pkg, err := packageOf(m)
	if err != nil {
		return nil, err
	}
	p = &prepared{key: key}
	query := "data." + pkg + "." + rule
	if rule == "allow" {
		// A resource policy reads Cloister's input or Trustee's.
		if p.dialect, err = DetectResourceDialect(m.Text); err != nil {
			return nil, fmt.Errorf("policy %s: %w", m.Name, err)
		}
		if p.dialect == TrusteeDialect {
			query = "data." + pkg + "." + trusteeAllowQuery
		} else {
			p.definesReasons = definesRule(m, reasonsRule) == nil
		}
	}
	if p.query, err = prepareQuery(ctx, m, query, data); err != nil {
		return nil, err
	}
	// The with modifiers of a Trustee query move input members, so the
	// module's input paths are not the evaluation's.
	if p.dialect != TrusteeDialect {
		p.paths, p.cacheable = inputPaths(m.Text)
	}

	e.mu.Lock()
	if len(e.cache) >= maxCached {
		clear(e.cache)
	}
	e.cache[key] = p
	e.mu.Unlock()
	return p, nil
}

// prepareQuery compiles m and prepares query over data. Built-in errors
// are errors, not undefined results, so that a policy cannot pass by
// failing.
func prepareQuery(ctx context.Context, m Module, query string, data map[string]any) (rego.PreparedEvalQuery, error) {
	q, err := rego.New(
		rego.Query(query),
		rego.Module(m.Name+".rego", m.Text),
		rego.Data(data),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, fmt.Errorf("policy %s: %w", m.Name, err)
	}
	return q, nil
}

// Check compiles m and reports a Rego error, so that a policy can be
// rejected when it is uploaded rather than at the first request.
func (e *Engine) Check(ctx context.Context, m Module, rule string) error {
	if err := definesRule(m, rule); err != nil {
		if rule == "deny" && definesRule(m, "trust_claims") == nil {
			return fmt.Errorf("%w; this is a Trustee attestation policy (it defines trust_claims), which Cloister does not evaluate: Cloister's attestation policies define deny, a set of reason objects {rule, claim, value, expected, message} over input.claims; start from `cloister policy default %s`", err, m.Name)
		}
		return err
	}
	_, err := e.prepare(ctx, m, rule, map[string]any{})
	return err
}

// definesRule requires m to define rule. A policy without its rule would
// evaluate to undefined, and an undefined deny must never read as "no
// reasons to deny".
func definesRule(m Module, rule string) error {
	parsed, err := ast.ParseModule(m.Name+".rego", m.Text)
	if err != nil {
		return fmt.Errorf("policy %s: %w", m.Name, err)
	}
	if parsed == nil {
		return fmt.Errorf("policy %s is empty", m.Name)
	}
	for _, r := range parsed.Rules {
		if r.Head.Name.String() == rule || (len(r.Head.Reference) > 0 && r.Head.Reference[0].String() == rule) {
			return nil
		}
	}
	return fmt.Errorf("policy %s defines no %s rule; an attestation policy must define deny (a set of reasons) and a resource policy allow (a boolean)", m.Name, rule)
}

// Appraise evaluates the attestation policy m over claims and returns the
// decision with every reason the policy gave, sorted by rule and claim.
// An evaluation error is returned as an error; the caller must reject.
func (e *Engine) Appraise(ctx context.Context, m Module, claims *attest.Claims, cfg Config, refs map[string][]string) (*appraise.Decision, error) {
	d, _, err := e.AppraiseEncoded(ctx, m, claims, cfg, refs)
	return d, err
}

// AppraiseEncoded is Appraise that also returns the JSON encoding of
// claims that the policy read, so that a caller that needs the encoding
// as well, for a token or a digest, encodes the claims only once. An
// error from encoding the claims starts with "encode claims".
func (e *Engine) AppraiseEncoded(ctx context.Context, m Module, claims *attest.Claims, cfg Config, refs map[string][]string) (*appraise.Decision, []byte, error) {
	claimsJSON, err := json.Marshal(claims)
	if err != nil {
		return nil, nil, fmt.Errorf("encode claims: %w", err)
	}
	p, err := e.prepareAttestation(ctx, m, refs)
	if err != nil {
		return nil, nil, err
	}
	obj, err := jsonvalue.ParseEncodedObject(claimsJSON)
	if err != nil {
		return nil, nil, fmt.Errorf("policy %s: input: claims: %w", m.Name, err)
	}
	d, err := e.appraise(ctx, m, p, obj, cfg)
	if err != nil {
		return nil, nil, err
	}
	return d, claimsJSON, nil
}

// AppraiseJSON is Appraise for claims the caller has already encoded as
// JSON (an attest.Claims). Anything but exactly one JSON object is an
// error.
func (e *Engine) AppraiseJSON(ctx context.Context, m Module, claimsJSON []byte, cfg Config, refs map[string][]string) (*appraise.Decision, error) {
	p, err := e.prepareAttestation(ctx, m, refs)
	if err != nil {
		return nil, err
	}
	obj, err := jsonvalue.ParseObject(claimsJSON)
	if err != nil {
		return nil, fmt.Errorf("policy %s: input: claims: %w", m.Name, err)
	}
	return e.appraise(ctx, m, p, obj, cfg)
}

// prepareAttestation returns the prepared deny query of the attestation
// policy m over the reference values refs.
func (e *Engine) prepareAttestation(ctx context.Context, m Module, refs map[string][]string) (*prepared, error) {
	if refs == nil {
		refs = map[string][]string{}
	}
	return e.prepareKeyed(ctx, m, "deny", map[string]any{"reference_values": refs}, referenceValuesDigest(refs))
}

// appraise evaluates the prepared deny query p over the claims, whose JSON
// text obj indexes.
func (e *Engine) appraise(ctx context.Context, m Module, p *prepared, obj *jsonvalue.Object, cfg Config) (*appraise.Decision, error) {
	config, err := e.inputConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy %s: input: %w", m.Name, err)
	}
	input := &appraisalInput{claims: obj, config: config}
	d, err := e.evaluate(ctx, m, p, input, func(rs rego.ResultSet) (any, error) { return denyDecision(m, rs) })
	if err != nil {
		return nil, err
	}
	// A kept decision is shared, so each caller gets its own copy.
	return copyDecision(d.(*appraise.Decision)), nil
}

// denyDecision reads the result of a deny query as a decision with every
// reason, sorted by rule and claim.
func denyDecision(m Module, rs rego.ResultSet) (*appraise.Decision, error) {
	reasons, defined, err := readReasons(m, "deny", ErrDenyShape, rs)
	if err != nil {
		return nil, err
	}
	if !defined {
		return nil, fmt.Errorf("policy %s: deny is undefined; an attestation policy must define deny as a set of reasons (empty to accept)", m.Name)
	}
	return &appraise.Decision{Accepted: len(reasons) == 0, Reasons: reasons}, nil
}

// readReasons reads the result of a query for rule, which must be a set of
// reason objects, and returns the reasons sorted by rule and claim. defined
// is false when the rule is undefined. Any other value, null included, is
// an error that wraps shapeErr, so that a policy cannot pass by returning
// something other than a set.
func readReasons(m Module, rule string, shapeErr error, rs rego.ResultSet) (reasons []appraise.Reason, defined bool, err error) {
	if len(rs) == 0 {
		return nil, false, nil
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, true, fmt.Errorf("policy %s: %s has %d results, expected one set", m.Name, rule, len(rs))
	}
	// Rego returns a set, like an array, as a slice.
	value, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		return nil, true, fmt.Errorf("policy %s: %w: %s is %s", m.Name, shapeErr, rule, regoTypeName(rs[0].Expressions[0].Value))
	}
	raw, err := json.Marshal(value)
	if err != nil {
		return nil, true, err
	}
	if err := json.Unmarshal(raw, &reasons); err != nil {
		return nil, true, fmt.Errorf("policy %s: %w: %w", m.Name, shapeErr, err)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if reasons[i].Rule != reasons[j].Rule {
			return reasons[i].Rule < reasons[j].Rule
		}
		return reasons[i].Claim < reasons[j].Claim
	})
	return reasons, true, nil
}

// regoTypeName names the JSON type of a value of a Rego result.
func regoTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, int, int64:
		return "a number"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// policyInput is the input of one evaluation.
type policyInput interface {
	// decisionKey returns the decision cache key of this input for p, a
	// cacheable prepared query.
	decisionKey(p *prepared) ([sha256.Size]byte, error)
	// value returns the input as the JSON values Rego reads. For a
	// cacheable p it may leave out what p's module does not read.
	value(p *prepared) (map[string]any, error)
}

// evaluate runs p's query on input, unless the decision cache holds the
// decision for an input that agrees with this one on every path the module
// reads. decide turns a result set into the decision, which is then kept.
func (e *Engine) evaluate(ctx context.Context, m Module, p *prepared, in policyInput, decide func(rego.ResultSet) (any, error)) (any, error) {
	var key [sha256.Size]byte
	if p.cacheable {
		var err error
		if key, err = in.decisionKey(p); err != nil {
			return nil, fmt.Errorf("policy %s: input: %w", m.Name, err)
		}
		if d, ok := e.decisions.get(key); ok {
			return d, nil
		}
	}

	input, err := in.value(p)
	if err != nil {
		return nil, fmt.Errorf("policy %s: input: %w", m.Name, err)
	}
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(ast.LazyObject(input)))
	if err != nil {
		return nil, fmt.Errorf("policy %s: evaluation failed: %w", m.Name, err)
	}
	d, err := decide(rs)
	if err != nil {
		return nil, err
	}
	if p.cacheable {
		e.decisions.put(key, d)
	}
	return d, nil
}

// copyDecision returns a copy of d that shares nothing a caller may change
// with d.
func copyDecision(d *appraise.Decision) *appraise.Decision {
	c := *d
	c.Reasons = slices.Clone(d.Reasons)
	return &c
}

// ErrDenyShape reports an attestation policy whose deny set holds something
// other than reason objects with string members.
var ErrDenyShape = errors.New("deny must be a set of reason objects {rule, claim, value, expected, message} with string values")

// Resource names the secret of a resource request.
type Resource struct {
	Path       string `json:"path"`
	Repository string `json:"repository"`
	Type       string `json:"type"`
	Tag        string `json:"tag"`
}

// Allow evaluates the resource policy m: whether the holder of a token with
// these claims may read res. Only allow == true permits. A Trustee policy
// (see ResourceDialect) receives the claims as input and Trustee's request
// data instead of Cloister's input.
func (e *Engine) Allow(ctx context.Context, m Module, token map[string]any, res Resource, query map[string][]string) (bool, error) {
	p, err := e.prepareEntry(ctx, m, "allow", map[string]any{})
	if err != nil {
		return false, err
	}
	if p.dialect == TrusteeDialect {
		return allowTrustee(ctx, m, p.query, token, res, query)
	}

	input, err := requestInput(res, query)
	if err != nil {
		return false, err
	}
	// The token claims are already JSON values (a verified token's claims
	// as ear.Verifier decodes them), so they go to Rego as they are, as a
	// lazy object that converts only the claims the policy reads. A nil
	// map stays null.
	input["token"] = nil
	if token != nil {
		input["token"] = token
	}
	return e.allow(ctx, m, p, plainInput(input))
}

// requestInput returns the members resource and query of a resource
// policy input as JSON values. A nil query is an empty object.
func requestInput(res Resource, query map[string][]string) (map[string]any, error) {
	if query == nil {
		query = map[string][]string{}
	}
	plain, err := toJSONValue(map[string]any{"resource": res, "query": query})
	if err != nil {
		return nil, err
	}
	return plain.(map[string]any), nil
}

// allow evaluates the allow rule of the prepared resource policy p.
func (e *Engine) allow(ctx context.Context, m Module, p *prepared, in policyInput) (bool, error) {
	allow, err := e.evaluate(ctx, m, p, in, func(rs rego.ResultSet) (any, error) { return allowed(rs), nil })
	if err != nil {
		return false, err
	}
	return allow.(bool), nil
}

// appraisalInput is the attestation policy input {"claims", "config"},
// with the claims as JSON text, of which only what is needed is decoded.
type appraisalInput struct {
	claims *jsonvalue.Object
	config *configInput
}

// value decodes the claims for Rego, with numbers kept as written, and only
// the claims a cacheable module reads (see readMembers).
func (in *appraisalInput) value(p *prepared) (map[string]any, error) {
	claims, err := readMembers(p, "claims", in.claims)
	if err != nil {
		return nil, err
	}
	return map[string]any{"claims": claims, "config": in.config.value}, nil
}

// readMembers decodes obj, the input member root, for Rego. For a module
// that reads root only at constant paths below its members, it decodes only
// the members those paths name, because the module reads nothing else.
func readMembers(p *prepared, root string, obj *jsonvalue.Object) (map[string]any, error) {
	if !p.cacheable || slices.ContainsFunc(p.paths, func(path []string) bool { return len(path) < 2 }) {
		value, err := jsonvalue.DecodeObject(obj.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", root, err)
		}
		return value, nil
	}

	var names []string
	for _, path := range p.paths {
		if path[0] == root {
			names = append(names, path[1])
		}
	}
	value, err := obj.DecodeMembers(names)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", root, err)
	}
	return value, nil
}

// configInput is the input member "config" of one Config: its JSON text
// for decision keys and its JSON value for Rego. The value is shared by
// every evaluation with this Config, which only reads it.
type configInput struct {
	raw   []byte
	json  *jsonvalue.Object
	value any
}

// inputConfig returns the input member of cfg, built once for the Config
// that a service passes on every request.
func (e *Engine) inputConfig(cfg Config) (*configInput, error) {
	// Comparing the encoding, rather than the fields, also covers fields
	// added to Config later, and keeps nothing the caller may change.
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if last := e.config.Load(); last != nil && bytes.Equal(last.raw, raw) {
		return last, nil
	}

	// Unlike the claims, the config is decoded without json.Number, as
	// toJSONValue decodes the other inputs.
	var value any
	if err := json.Unmarshal(raw, &value); err != nil {
		return nil, err
	}
	obj, err := jsonvalue.ParseEncodedObject(raw)
	if err != nil {
		return nil, err
	}
	c := &configInput{raw: raw, json: obj, value: value}
	e.config.Store(c)
	return c, nil
}

// plainInput is a policy input already decoded into JSON values.
type plainInput map[string]any

func (in plainInput) value(*prepared) (map[string]any, error) { return in, nil }

// toJSONValue converts v to the plain JSON values Rego reads, so that
// struct tags and Hex encodings apply.
func toJSONValue(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}
