package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/store"
)

// TrusteeResourcePolicyName is the name under which POST
// /kbs/v0/resource-policy stores the resource policy: the one the service
// evaluates for every release.
const TrusteeResourcePolicyName = "default"

// Trustee problem variants that only these endpoints send.
const (
	problemParsePolicyError = "ParsePolicyError"
	problemRvpsError        = "RvpsError"
)

// Trustee returns the handler of Trustee's admin endpoints under /kbs/v0,
// so that Trustee's "kbs-client config set-resource | delete-resource |
// set-resource-policy | set-attestation-policy |
// set-sample-reference-value | get-reference-value" manage a Cloister
// service. The service routes the patterns TrusteeRoutes lists to it.
// The paths and bodies are those of Trustee v0.21.0:
//
//	POST   /kbs/v0/resource/<repository>/<type>/<tag>  raw secret bytes
//	DELETE /kbs/v0/resource/<repository>/<type>/<tag>
//	POST   /kbs/v0/resource-policy     {"policy": base64url, no padding, of Rego}
//	GET    /kbs/v0/resource-policy     returns ["<policy name>", ...]
//	POST   /kbs/v0/attestation-policy  {"type", "policy_id", "policy": base64url, no padding}
//	POST   /kbs/v0/reference-value     {"version": "0.1.0", "type": "sample", "payload": std base64 of {"<name>": ["<value>", ...]}}
//	GET    /kbs/v0/reference-value/<name>  returns ["<value>", ...]
//
// The POST and DELETE calls return 200 with an empty body, the GET calls
// 200 with JSON. Authentication is the same as on /admin/v0: the bearer
// admin key, a TLS client certificate, or an admin token signed by one of
// Config.TokenKeys, which is what Trustee's kbs-client sends (see token.go
// for the claims and role rules). A failure is 401 with Trustee's problem document, type
// AdminAuthInitialization on the resource paths and AdminAuthAccess on the
// others (Trustee's variant names), and the detail gives the reason. Other
// failures are 401 too, as in Trustee, with ParsePolicyError,
// AttestationError, RvpsError, SerdeError or PluginInternalError, and the
// detail gives the cause.
//
// The changes go through the same store calls as /admin/v0, so secrets are
// encrypted at rest and each change appends an admin audit record in its
// transaction. Policies are checked with Config.ValidatePolicy first, and
// the endpoints reject every policy when it is nil.
//
// Cloister's policies are not Trustee's:
//
//   - The resource policy is stored as the resource policy named "default",
//     the one the service evaluates. It must define data.<package>.allow.
//     Both shapes are accepted, and policy.DetectResourceDialect
//     distinguishes them. A Trustee policy reads the EAR claims at input (so
//     input.submods.cpu0) and the request at data.plugin (always
//     "resource"), data["resource-path"] and data.query, and is evaluated
//     with that input, as Trustee's KBS evaluates it. A Cloister policy reads
//     {"token": the EAR claims, "resource": {"path", "repository", "type",
//     "tag"}, "query": {...}}. A Cloister policy may also define
//     data.<package>.reasons, a set of reason objects {rule, claim, value,
//     expected, message}. When allow denies, the service evaluates reasons
//     and writes them to its log and audit record. A Trustee policy gives
//     no reasons. A module that reads both inputs is rejected.
//     Modules must be Rego v1 (rules with "if"), as the sample policies of
//     Trustee v0.21.0 are.
//   - The attestation policy must define data.<package>.deny, the set of
//     reasons to reject, over {"claims": attest.Claims, "config": {...}} and
//     data.reference_values. Trustee's trust_claims policies are rejected.
//     Cloister chooses the policy by TEE, so policy_id must be a TEE name
//     such as "snp" or "tdx", and Trustee's "default_cpu" is rejected.
//   - Each name of a "sample" reference value becomes a Cloister reference
//     value of that name, such as "snp.measurement", with each listed value.
//     The names and values are checked as on /admin/v0 (see
//     CheckReferenceValue), so a name must be <tee>.<claim> and a Trustee
//     name without a TEE, such as "svn", is rejected. Cloister's reference
//     values are strings, so the integers and booleans that kbs-client sends
//     with --as-integer or --as-bool are stored as their JSON text ("1",
//     "true").
//
// kbs-client up to v0.20.0 signs an EdDSA token with --auth-private-key
// for each call; put the matching public key into Config.TokenKeys
// (cloister serve --admin-token-keys). kbs-client v0.21.0 sends the
// content of --admin-token-file as it is, which may be such a token or the
// Cloister admin key. Versions of kbs-client that have the admin-login
// command send, without --auth-private-key, the admin_token member of
// ~/.kbs-client/admin-data.json as the bearer token, so writing
// {"admin_token": "<Cloister admin key>"} there lets them authenticate here.
//
// The handler shares h's authentication, body limit, store and policy
// check.
func (h *Handler) Trustee() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /kbs/v0/resource/{path...}", h.trusteeSetResource)
	mux.HandleFunc("DELETE /kbs/v0/resource/{path...}", h.trusteeDeleteResource)
	mux.HandleFunc("POST /kbs/v0/resource-policy", h.trusteeSetResourcePolicy)
	mux.HandleFunc("GET /kbs/v0/resource-policy", h.trusteeListResourcePolicies)
	mux.HandleFunc("GET /kbs/v0/reference-value/{id...}", h.trusteeGetReferenceValue)
	mux.HandleFunc("POST /kbs/v0/attestation-policy", h.trusteeSetAttestationPolicy)
	mux.HandleFunc("POST /kbs/v0/reference-value", h.trusteeSetReferenceValue)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		detail := "Request path " + r.URL.Path + " is invalid"
		h.auditRejectedChange(r, http.StatusNotFound, detail)
		kbs.NewProblem(kbs.ProblemInvalidRequestPath, detail).Write(w)
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requester, reason := h.authenticate(r)
		if requester == "" {
			h.rejected.log(h.cfg.Logger, h.cfg.Now(), r, reason)
			variant := kbs.ProblemAdminAuthAccess
			if strings.HasPrefix(r.URL.Path, "/kbs/v0/resource/") {
				variant = kbs.ProblemAdminAuthInitialization
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="cloister-admin"`)
			kbs.NewProblem(variant, "Admin auth error: "+reason+"; the request needs the Cloister admin key or an admin token signed by a trusted Ed25519 key (Authorization: Bearer <key or token>), or a TLS client certificate from the configured CA").Write(w)
			return
		}

		r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
		mux.ServeHTTP(w, r.WithContext(withRequester(r.Context(), requester)))
	})
}

// TrusteeRoutes returns the ServeMux patterns that the service routes to
// the handler Trustee returns. None of them is a guest endpoint.
func (h *Handler) TrusteeRoutes() []string {
	return []string{
		"POST /kbs/v0/resource/",
		"DELETE /kbs/v0/resource/",
		"POST /kbs/v0/resource-policy",
		"GET /kbs/v0/resource-policy",
		"POST /kbs/v0/attestation-policy",
		"POST /kbs/v0/reference-value",
		"GET /kbs/v0/reference-value/",
	}
}

func (h *Handler) trusteeSetResource(w http.ResponseWriter, r *http.Request) {
	path := r.PathValue("path")
	value, err := io.ReadAll(r.Body)
	if err != nil {
		h.trusteeError(w, r, kbs.ProblemPluginInternalError, err)
		return
	}
	err = h.change(r, func(tx store.Tx) (store.AuditRecord, error) {
		info, err := tx.PutSecret(r.Context(), path, value)
		return store.AuditRecord{Resource: path, Reason: store.SecretPutReason(info.Version, trusteeAuditDetail)}, err
	})
	if err != nil {
		h.trusteeError(w, r, kbs.ProblemPluginInternalError, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// trusteeAuditDetail ends the audit reason of a secret change made
// through the Trustee admin endpoints.
const trusteeAuditDetail = " through the Trustee admin API"

func (h *Handler) trusteeDeleteResource(w http.ResponseWriter, r *http.Request) {
	path := r.PathValue("path")
	err := h.change(r, func(tx store.Tx) (store.AuditRecord, error) {
		return store.AuditRecord{Resource: path, Reason: store.SecretDeleteReason(trusteeAuditDetail)}, tx.DeleteSecret(r.Context(), path)
	})
	if err != nil {
		h.trusteeError(w, r, kbs.ProblemPluginInternalError, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// trusteeResourcePolicyRequest is the body of POST /kbs/v0/resource-policy.
type trusteeResourcePolicyRequest struct {
	Policy string `json:"policy"`
}

func (h *Handler) trusteeSetResourcePolicy(w http.ResponseWriter, r *http.Request) {
	var req trusteeResourcePolicyRequest
	if err := decodeTrusteeJSON(r, &req); err != nil {
		h.trusteeError(w, r, problemParsePolicyError, err)
		return
	}
	module, err := decodeTrusteePolicy(req.Policy)
	if err != nil {
		h.trusteeError(w, r, problemParsePolicyError, err)
		return
	}
	// The policy check (Config.ValidatePolicy) rejects a module that reads
	// both Trustee's and Cloister's input.
	h.trusteePutPolicy(w, r, problemParsePolicyError, store.PolicyResource, TrusteeResourcePolicyName, module)
}

// trusteeListResourcePolicies returns the names of the resource policies
// as a JSON array, as Trustee returns its policy ids. The list always
// contains TrusteeResourcePolicyName, the policy the service evaluates,
// because the service falls back to its built-in default resource policy
// when none of that name is stored; Trustee likewise stores its default
// policy at startup.
func (h *Handler) trusteeListResourcePolicies(w http.ResponseWriter, r *http.Request) {
	list, err := h.cfg.Store.ListPolicies(r.Context(), store.PolicyResource)
	if err != nil {
		h.trusteeError(w, r, kbs.ProblemPolicyEngineError, err)
		return
	}
	names := []string{TrusteeResourcePolicyName}
	for _, p := range list {
		if p.Name != TrusteeResourcePolicyName {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	writeJSON(w, http.StatusOK, names)
}

// trusteeGetReferenceValue returns the values of the reference value
// named id that have not expired, as a JSON array of strings. Trustee
// returns the value a provenance message stored, which for kbs-client's
// sample values is an array of strings, an integer or a boolean; Cloister
// stores every value as a string and returns an array. An id without
// values is an RvpsError, as in Trustee.
func (h *Handler) trusteeGetReferenceValue(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var values []string
	if id != "" {
		list, err := h.cfg.Store.ListReferenceValues(r.Context(), id)
		if err != nil {
			h.trusteeError(w, r, problemRvpsError, err)
			return
		}
		now := h.cfg.Now()
		for _, rv := range list {
			if rv.Expires.IsZero() || rv.Expires.After(now) {
				values = append(values, rv.Value)
			}
		}
	}
	if len(values) == 0 {
		h.trusteeError(w, r, problemRvpsError, badRequest("Failed to get reference_values: No reference value found for the given id: %s", id))
		return
	}
	writeJSON(w, http.StatusOK, values)
}

// trusteeAttestationPolicyRequest is the body of POST
// /kbs/v0/attestation-policy. Trustee ignores Type, and so does Cloister.
type trusteeAttestationPolicyRequest struct {
	Type     string `json:"type"`
	PolicyID string `json:"policy_id"`
	Policy   string `json:"policy"`
}

func (h *Handler) trusteeSetAttestationPolicy(w http.ResponseWriter, r *http.Request) {
	var req trusteeAttestationPolicyRequest
	if err := decodeTrusteeJSON(r, &req); err != nil {
		h.trusteeError(w, r, kbs.ProblemAttestationError, err)
		return
	}
	if !policy.IsAttestationTEE(req.PolicyID) {
		h.trusteeError(w, r, kbs.ProblemAttestationError, badRequest(
			"policy_id %q is not a TEE name; Cloister selects the attestation policy by TEE, so use one of %v", req.PolicyID, policy.AttestationTEEs()))
		return
	}
	module, err := decodeTrusteePolicy(req.Policy)
	if err != nil {
		h.trusteeError(w, r, kbs.ProblemAttestationError, err)
		return
	}
	h.trusteePutPolicy(w, r, kbs.ProblemAttestationError, store.PolicyAttestation, req.PolicyID, module)
}

// trusteePutPolicy validates and stores a policy, the same way PUT
// /admin/v0/policies/{kind}/{name} does.
func (h *Handler) trusteePutPolicy(w http.ResponseWriter, r *http.Request, variant string, kind store.PolicyKind, name, module string) {
	if h.cfg.ValidatePolicy == nil {
		h.trusteeError(w, r, variant, errNoPolicyValidator)
		return
	}
	if err := h.cfg.ValidatePolicy(kind, name, module); err != nil {
		h.trusteeError(w, r, variant, badRequest("%s policy %s: %v", kind, name, err))
		return
	}
	err := h.change(r, func(tx store.Tx) (store.AuditRecord, error) {
		p, err := tx.PutPolicy(r.Context(), kind, name, module)
		return store.AuditRecord{Resource: "policy:" + string(kind) + "/" + name, PolicyDigest: p.Digest,
			Reason: fmt.Sprintf("set policy version %d through the Trustee admin API", p.Version)}, err
	})
	if err != nil {
		h.trusteeError(w, r, variant, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// trusteeReferenceValueRequest is the body of POST
// /kbs/v0/reference-value, Trustee's reference value provenance message.
type trusteeReferenceValueRequest struct {
	Version string `json:"version"`
	Type    string `json:"type"`
	Payload string `json:"payload"`
}

func (h *Handler) trusteeSetReferenceValue(w http.ResponseWriter, r *http.Request) {
	var req trusteeReferenceValueRequest
	if err := decodeTrusteeJSON(r, &req); err != nil {
		h.trusteeError(w, r, problemRvpsError, err)
		return
	}
	values, err := parseSampleProvenance(req)
	if err != nil {
		h.trusteeError(w, r, problemRvpsError, err)
		return
	}
	if err := checkSampleValues(values); err != nil {
		h.trusteeError(w, r, problemRvpsError, err)
		return
	}

	err = h.change(r, func(tx store.Tx) (store.AuditRecord, error) {
		var names []string
		for name, list := range values {
			for _, v := range list {
				if _, err := tx.AddReferenceValue(r.Context(), store.ReferenceValue{Name: name, Value: v}); err != nil {
					return store.AuditRecord{}, err
				}
			}
			names = append(names, name)
		}
		return store.AuditRecord{Resource: "refvalue:" + strings.Join(names, ","),
			Reason: fmt.Sprintf("added sample reference values %v through the Trustee admin API", values)}, nil
	})
	if err != nil {
		h.trusteeError(w, r, problemRvpsError, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// parseSampleProvenance decodes the payload of a "sample" provenance
// message, version 0.1.0: standard base64 of a JSON object that maps each
// name to a list of values or to one value. kbs-client sends strings by
// default and integers or booleans with --as-integer or --as-bool, so those
// scalars are accepted and stored in their JSON text ("1", "true").
func parseSampleProvenance(req trusteeReferenceValueRequest) (map[string][]string, error) {
	if req.Version != "0.1.0" {
		return nil, badRequest("reference value version %q is not supported; use 0.1.0", req.Version)
	}
	if req.Type != "sample" {
		return nil, badRequest("reference value type %q is not supported; Cloister reads only the sample type, {\"<name>\": [\"<value>\", ...]}", req.Type)
	}
	payload, err := base64.StdEncoding.DecodeString(req.Payload)
	if err != nil {
		return nil, badRequest("reference value payload is not standard base64: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, badRequest("sample reference value payload must be a JSON object {\"<name>\": [\"<value>\", ...]}: %v", err)
	}
	// json.Unmarshal keeps only the last of two equal names, so the other
	// list of values would be dropped without notice.
	if err := jsonvalue.WalkMembers(payload, nil); err != nil {
		return nil, badRequest("sample reference value payload: %v. Give each name once, with all its values in one list", err)
	}
	if len(raw) == 0 {
		return nil, badRequest("sample reference value payload names no reference value")
	}

	values := make(map[string][]string, len(raw))
	for name, msg := range raw {
		list, err := sampleValues(msg)
		if err != nil {
			return nil, badRequest("sample reference value %q: %v", name, err)
		}
		values[name] = list
	}
	return values, nil
}

// checkSampleValues checks each value with CheckReferenceValue, the check
// of POST /admin/v0/refvalues/{name}, and replaces it with the form to store. It
// checks the names in sorted order, so that the first invalid one is
// reported whatever the order of the payload.
func checkSampleValues(values map[string][]string) error {
	for _, name := range slices.Sorted(maps.Keys(values)) {
		for i, v := range values[name] {
			checked, err := CheckReferenceValue(name, v)
			if err != nil {
				return invalidRequest(err)
			}
			values[name][i] = checked
		}
	}
	return nil
}

// sampleValues returns the values of one sample reference value: a JSON
// string, number or boolean, or a non-empty list of them.
func sampleValues(msg json.RawMessage) ([]string, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(msg, &items); err != nil {
		items = []json.RawMessage{msg}
	}
	if len(items) == 0 {
		return nil, errors.New("the list of values is empty; send at least one value")
	}

	list := make([]string, 0, len(items))
	for _, item := range items {
		dec := json.NewDecoder(bytes.NewReader(item))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("value %s is not JSON: %v", item, err)
		}
		switch v := v.(type) {
		case string:
			list = append(list, v)
		case json.Number:
			list = append(list, v.String())
		case bool:
			list = append(list, fmt.Sprint(v))
		default:
			return nil, fmt.Errorf("value %s is not a string, number or boolean", item)
		}
	}
	return list, nil
}

// decodeTrusteeJSON decodes a request body into v and rejects unknown and
// repeated members and trailing data (see decodeJSONBody).
func decodeTrusteeJSON(r *http.Request, v any) error {
	if err := decodeJSONBody(r.Body, v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return badRequest("request body is not the expected JSON object: %v", err)
	}
	return nil
}

// decodeTrusteePolicy decodes a policy sent as base64url without padding,
// the only encoding Trustee accepts.
func decodeTrusteePolicy(encoded string) (string, error) {
	if encoded == "" {
		return "", badRequest("policy is missing; send the Rego module as base64url without padding")
	}
	module, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		return "", badRequest("policy is not base64url without padding: %v", err)
	}
	return string(module), nil
}

// trusteeError writes err as a Trustee problem document of variant with
// status 401, as Trustee does for every admin failure. Errors the store
// did not classify are logged and sent without detail, because they may
// name internal state.
func (h *Handler) trusteeError(w http.ResponseWriter, r *http.Request, variant string, err error) {
	status, _, detail := h.problemFor(r, err)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		variant = kbs.ProblemSerdeError
	}
	h.auditRejectedChange(r, status, detail)
	kbs.NewProblem(variant, detail).Write(w)
}
