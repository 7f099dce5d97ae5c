package kbs

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// tokenReasons returns the appraisal reasons an EAR token carries
// ("cloister.reasons" in its submodules), as "rule: message" lines. The
// token is the client's own and is only read, not verified, so that a
// denied workload can say why without the server's logs.
func tokenReasons(token string) []string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var doc any
	if json.Unmarshal(payload, &doc) != nil {
		return nil
	}
	var out []string
	collectReasons(doc, &out, 0)
	return out
}

// collectReasons walks a decoded JSON value for "cloister.reasons" arrays.
// depth bounds the walk, because the value came from the network.
func collectReasons(v any, out *[]string, depth int) {
	if depth > 8 {
		return
	}
	switch t := v.(type) {
	case map[string]any:
		if list, ok := t["cloister.reasons"].([]any); ok {
			for _, item := range list {
				if r, ok := item.(map[string]any); ok {
					*out = append(*out, fmt.Sprintf("%v: %v", r["rule"], r["message"]))
				}
			}
		}
		for k, child := range t {
			if k != "cloister.reasons" {
				collectReasons(child, out, depth+1)
			}
		}
	case []any:
		for _, child := range t {
			collectReasons(child, out, depth+1)
		}
	}
}

// problemCauses are the usual causes of the resource problems whose
// detail text names none, because the protocol gives most failures
// status 401 and a fixed text.
var problemCauses = map[string]string{
	ProblemPluginInternalError: "the key broker has no resource at this path, the path is invalid, or the key broker " +
		"failed to read the secret or to record the release (a Cloister replica whose master key did not seal the " +
		"stored secret cannot read it); the key broker's log gives the cause under the request ID",
	ProblemTokenVerifierError: "the key broker did not accept the attestation token it issued " +
		"(Cloister replicas behind one address need the same ear-signing-key.pem)",
}

// explainProblem adds the token's appraisal reasons to a PolicyDeny error,
// and the usual cause to the problems listed in problemCauses. A problem
// type outside the KBS protocol's namespace gets neither.
func explainProblem(err error, token string) error {
	var p *Problem
	if !errors.As(err, &p) || !strings.HasPrefix(p.Type, ProblemTypePrefix) {
		return err
	}
	if cause, ok := problemCauses[p.Variant()]; ok {
		return fmt.Errorf("%w; %s", err, cause)
	}
	if p.Variant() != ProblemPolicyDeny {
		return err
	}
	reasons := tokenReasons(token)
	if len(reasons) == 0 {
		return err
	}
	return fmt.Errorf("%w; the attestation result gives these reasons: %s", err, strings.Join(reasons, "; "))
}
