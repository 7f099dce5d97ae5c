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

// explainDenial adds the token's appraisal reasons to a PolicyDeny error.
func explainDenial(err error, token string) error {
	var p *Problem
	if !errors.As(err, &p) || p.Variant() != ProblemPolicyDeny {
		return err
	}
	reasons := tokenReasons(token)
	if len(reasons) == 0 {
		return err
	}
	return fmt.Errorf("%w; the attestation result gives these reasons: %s", err, strings.Join(reasons, "; "))
}
