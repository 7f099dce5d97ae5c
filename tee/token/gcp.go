package token

import (
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
)

// gcpIssuer is the iss claim of Confidential Space tokens.
const gcpIssuer = "https://confidentialcomputing.googleapis.com"

// gcpDebugDisabled is the dbgstat value of a production Confidential Space
// image. Every other value ("enabled", or a later addition) counts as debug,
// because the workload operator may be able to reach the VM's memory.
const gcpDebugDisabled = "disabled-since-boot"

// GCP is the Google Confidential Space token verifier. OIDC tokens verify
// under the caller's JWKS; PKI tokens verify through their x5c chain to the
// Confidential Space root that the caller supplies.
var GCP = Verifier{is: &issuer{
	tee:         attest.TEEGCPToken,
	service:     "Google Confidential Space",
	algs:        []jose.SignatureAlgorithm{jose.RS256},
	keys:        keysHeaderChainOrJWKS,
	validIssuer: func(iss string) bool { return iss == gcpIssuer },
	wantIssuer:  gcpIssuer,
	mapClaims:   mapGCPClaims,
}}

func init() { attest.Register(GCP) }

func mapGCPClaims(claims claimSet, c *attest.Claims) ([][]byte, error) {
	dbgstat, ok, err := claims.text("dbgstat")
	if err != nil {
		return nil, attest.Malformed("dbgstat", "invalid debug status claim", err)
	}
	if !ok {
		return nil, attest.Errorf(attest.ErrMalformed, "dbgstat", "the token has no debug status claim, so the image's debug state is unknown").
			WithFix("pass a Confidential Space attestation token")
	}
	c.Debug = dbgstat != gcpDebugDisabled
	c.SetAttribute("dbgstat", dbgstat)

	if err := mapGCPContainer(claims, c); err != nil {
		return nil, err
	}
	if err := mapGCPPlatform(claims, c); err != nil {
		return nil, err
	}

	nonces, _, err := claims.textList("eat_nonce")
	if err != nil {
		return nil, attest.Malformed("eat_nonce", "invalid nonce claim", err)
	}
	var out [][]byte
	for _, n := range nonces {
		out = append(out, []byte(n))
	}
	if len(out) > 0 {
		c.Nonce = out[0]
		c.SetAttribute("eat_nonce", nonces)
	}
	return out, nil
}

// mapGCPContainer maps the submods.container claims: the image digest is
// the workload's measurement.
func mapGCPContainer(claims claimSet, c *attest.Claims) error {
	digest, ok, err := claims.text("submods", "container", "image_digest")
	if err != nil {
		return attest.Malformed("submods.container.image_digest", "invalid image digest claim", err)
	}
	if ok {
		hexDigest, found := strings.CutPrefix(digest, "sha256:")
		value, err := attest.ParseHex(hexDigest)
		if !found || err != nil || len(value) != 32 {
			return attest.Errorf(attest.ErrMalformed, "submods.container.image_digest", "image digest %q is not sha256: followed by 64 hexadecimal digits", digest)
		}
		c.Measurement = value
		c.SetMeasurement("image_digest", value)
	} else {
		c.Skip("image-digest", false, "the token has no submods.container.image_digest claim")
	}
	for _, name := range []string{"image_reference", "image_id", "restart_policy"} {
		if v, ok, err := claims.text("submods", "container", name); err == nil && ok {
			c.SetAttribute("container_"+name, v)
		}
	}
	if sigs, ok := claims.lookup("submods", "container", "image_signatures"); ok {
		c.SetAttribute("container_image_signatures", sigs)
	}
	return nil
}

// mapGCPPlatform maps the hardware, software and GCE claims.
func mapGCPPlatform(claims claimSet, c *attest.Claims) error {
	for _, name := range []string{"hwmodel", "swname", "oemid", "secboot", "aud", "sub"} {
		if v, ok := claims.lookup(name); ok {
			c.SetAttribute(name, v)
		}
	}
	if hw, ok, err := claims.text("hwmodel"); err == nil && ok {
		c.Product = hw
	}
	for _, name := range []string{"swversion", "support_attributes", "google_service_accounts"} {
		list, ok, err := claims.textList(name)
		if err != nil {
			return attest.Malformed(name, "invalid claim", err)
		}
		if ok {
			c.SetAttribute(name, list)
		}
	}
	if swname, ok, _ := claims.text("swname"); ok && swname != "CONFIDENTIAL_SPACE" {
		c.Warnings = append(c.Warnings, fmt.Sprintf("swname is %q, not CONFIDENTIAL_SPACE: the VM does not run the Confidential Space image", swname))
	}
	for _, name := range []string{"project_id", "project_number", "zone", "instance_id", "instance_name"} {
		if v, ok := claims.lookup("submods", "gce", name); ok {
			c.SetPlatform("gce_"+name, fmt.Sprint(v))
		}
	}
	return nil
}
