package token

import (
	"bytes"
	"crypto/sha512"
	"reflect"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
)

// itaIssuer is the iss claim of Intel Trust Authority tokens.
const itaIssuer = "Intel Trust Authority"

// ITA is the Intel Trust Authority token verifier. Tokens verify under a
// key of the caller's JWKS whose x5c chain verifies to the Intel Trust
// Authority root that the caller supplies.
var ITA = Verifier{is: &issuer{
	tee:         attest.TEEITAToken,
	service:     "Intel Trust Authority",
	algs:        []jose.SignatureAlgorithm{jose.PS384, jose.RS256},
	keys:        keysJWKSChain,
	validIssuer: validITAIssuer,
	wantIssuer:  itaIssuer,
	mapClaims:   mapITAClaims,
}}

func init() { attest.Register(ITA) }

// validITAIssuer accepts the issuer name and the portal URLs that Intel
// Trust Authority has used.
func validITAIssuer(iss string) bool {
	if iss == itaIssuer {
		return true
	}
	host, ok := issuerHost(iss)
	return ok && (host == "trustauthority.intel.com" || strings.HasSuffix(host, ".trustauthority.intel.com"))
}

// itaCPUAttesters are the members in which a version 2 token ("ver":
// "2.0.0") nests the claims of a CPU TEE, with the attester_type each one
// contains. A version 1 token carries those claims at the top level. Intel's
// trustauthority-kbs reads the same members (model/attestation_token_v2.go)
// and treats tdx and sgx as mutually exclusive.
var itaCPUAttesters = []struct{ member, attesterType string }{
	{"tdx", "TDX"},
	{"sgx", "SGX"},
}

// itaGPUAttester is the member of a version 2 token that contains the
// claims of NVIDIA GPUs attested together with the TD.
const itaGPUAttester = "nvgpu"

func mapITAClaims(claims claimSet, c *attest.Claims) ([][]byte, error) {
	if ver, ok, _ := claims.text("ver"); ok {
		c.SetAttribute("ver", ver)
	}
	attester, err := itaAttester(claims)
	if err != nil {
		return nil, err
	}
	attesterType, err := itaAttesterType(attester)
	if err != nil {
		return nil, err
	}
	c.SetAttribute("attester_type", attesterType)
	if err := mapIntelTCB(attester, c); err != nil {
		return nil, err
	}
	switch attesterType {
	case "TDX":
		if err := mapTDXClaims(attester, "tdx_is_debuggable", c); err != nil {
			return nil, err
		}
	case "SGX":
		if err := mapSGXClaims(attester, itaSGXClaimNames, "pass the token as Intel Trust Authority issued it", c); err != nil {
			return nil, err
		}
	case "":
		c.Skip("tee-claims", true, "the token names no attester (no attester_type claim and no tdx or sgx object), so its TEE claims are not mapped")
	default:
		c.Skip("tee-claims", true, "attester type "+attesterType+" is not mapped: only TDX and SGX tokens are")
	}
	if err := mapITAGPU(claims, c); err != nil {
		return nil, err
	}
	nonce, err := itaNonce(claims, attester, c)
	if err != nil {
		return nil, err
	}
	if nonce == nil {
		return nil, nil
	}
	return [][]byte{nonce}, nil
}

// itaAttester returns the object that contains the token's CPU TEE claims:
// the top level of a version 1 token, or the one tdx or sgx object of a
// version 2 token. A token with two CPU attester objects, or with both
// top-level version 1 TEE claims and a version 2 object, is ambiguous and
// rejected.
func itaAttester(claims claimSet) (teeClaims, error) {
	var nested []string
	for _, a := range itaCPUAttesters {
		_, ok, err := claims.object(a.member)
		if err != nil {
			return teeClaims{}, attest.Malformed(a.member, "invalid attester claim", err)
		}
		if ok {
			nested = append(nested, a.member)
		}
	}
	if len(nested) > 1 {
		return teeClaims{}, attest.Errorf(attest.ErrMalformed, strings.Join(nested, ", "),
			"the token carries the attester objects %s, so it is ambiguous which CPU TEE it describes", strings.Join(nested, " and ")).
			WithFix("pass a token that Intel Trust Authority issued for one CPU TEE")
	}
	if len(nested) == 0 {
		return teeClaims{all: claims}, nil
	}
	if top := itaTopLevelTEEClaims(claims); len(top) > 0 {
		return teeClaims{}, attest.Errorf(attest.ErrMalformed, top[0]+", "+nested[0],
			"the token carries both top-level version 1 TEE claims (%s) and a version 2 %s object, so it is ambiguous which describe the TEE", strings.Join(top, ", "), nested[0]).
			WithFix("pass the token as Intel Trust Authority issued it")
	}
	return teeClaims{all: claims, path: []string{nested[0]}}, nil
}

// itaTopLevelTEEClaims returns, sorted, the top-level claims that only a
// version 1 token has there: the attester_* claims and the tdx_* and sgx_*
// claims.
func itaTopLevelTEEClaims(claims claimSet) []string {
	var names []string
	for name := range claims {
		if strings.HasPrefix(name, "attester_") || strings.HasPrefix(name, "tdx_") || strings.HasPrefix(name, "sgx_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// itaAttesterType returns the attester type of the attester object. A
// version 2 object may omit attester_type, because its member name already
// names the TEE (Intel's trustauthority-kbs takes the type from it), but
// may not contradict it.
func itaAttesterType(attester teeClaims) (string, error) {
	attesterType, ok, err := attester.all.text(attester.at("attester_type")...)
	if err != nil {
		return "", attest.Malformed(attester.field("attester_type"), "invalid attester type claim", err)
	}
	if len(attester.path) == 0 {
		return attesterType, nil
	}
	member := attester.path[0]
	var want string
	for _, a := range itaCPUAttesters {
		if a.member == member {
			want = a.attesterType
		}
	}
	if !ok {
		return want, nil
	}
	if attesterType != want {
		return "", attest.Errorf(attest.ErrMalformed, attester.field("attester_type"), "the %s object names the attester type %q", member, attesterType).
			WithValues(attesterType, want).
			WithFix("pass the token as Intel Trust Authority issued it")
	}
	return attesterType, nil
}

// itaSGXClaimNames are the claim names of an Intel Trust Authority SGX token.
var itaSGXClaimNames = sgxClaimNames{
	debug: "sgx_is_debuggable", mrenclave: "sgx_mrenclave", mrsigner: "sgx_mrsigner",
	isvProdID: "sgx_isvprodid", isvSVN: "sgx_isvsvn", reportData: "sgx_report_data",
}

// mapITAGPU records the nvgpu object of a token that attests NVIDIA GPUs
// together with the TD. Cloister does not appraise those claims, so a
// required check stays not checked and the default appraisal rejects the
// token: an accepted token would read as if its GPUs had been appraised.
func mapITAGPU(claims claimSet, c *attest.Claims) error {
	gpu, ok, err := claims.object(itaGPUAttester)
	if err != nil {
		return attest.Malformed(itaGPUAttester, "invalid attester claim", err)
	}
	if !ok {
		return nil
	}
	if attesterType, ok, _ := gpu.text("attester_type"); ok {
		c.SetAttribute("nvgpu_attester_type", attesterType)
	}
	// Intel's trustauthority-kbs reads these two members of the nvgpu
	// object (model/attestation_token_v2.go).
	if result, ok, _ := gpu.boolean("x-nvidia-overall-att-result"); ok {
		c.SetAttribute("nvgpu_overall_att_result", result)
	}
	if devices, ok, _ := gpu.object("claim_details"); ok {
		c.SetAttribute("nvgpu_devices", len(devices))
	}
	c.Skip("nvgpu-claims", true, "the token's nvgpu claims (NVIDIA GPUs attested together with the TD) are not appraised by Cloister. Verify the GPU evidence with --format nvidia-gpu, or request a token without GPU evidence")
	return nil
}

// itaNonce reads verifier_nonce and checks its binding: Intel Trust
// Authority issues val and iat, the attester puts SHA-512(val || iat ||
// attester_held_data) into its report data, and the token repeats all of
// them. A token whose report data does not bind its nonce is rejected.
func itaNonce(claims claimSet, attester teeClaims, c *attest.Claims) ([]byte, error) {
	at, err := itaNonceLocation(claims, attester)
	if err != nil || at == nil {
		return nil, err
	}
	nonce := teeClaims{all: claims, path: at}
	valText, ok, err := claims.text(nonce.at("val")...)
	if err != nil {
		return nil, attest.Malformed(nonce.field("val"), "invalid nonce claim", err)
	}
	if !ok {
		return nil, nil
	}
	val, err := decodeBase64(valText)
	if err != nil {
		return nil, attest.Malformed(nonce.field("val"), "invalid nonce claim", err)
	}
	c.Nonce = val
	c.Skip("verifier-nonce-signature", false, "the signature of verifier_nonce is not checked: the token signature already covers the nonce")

	iatText, _, err := claims.text(nonce.at("iat")...)
	if err != nil {
		return nil, attest.Malformed(nonce.field("iat"), "invalid nonce claim", err)
	}
	iat, err := decodeBase64(iatText)
	if err != nil {
		return nil, attest.Malformed(nonce.field("iat"), "invalid nonce claim", err)
	}
	var heldData []byte
	if s, ok, _ := claims.text(attester.at("attester_held_data")...); ok {
		if heldData, err = decodeBase64(s); err != nil {
			return nil, attest.Malformed(attester.field("attester_held_data"), "invalid held data claim", err)
		}
	}
	if len(c.ReportData) == 0 {
		c.Skip("nonce-binding", false, "the token carries no report data to bind the nonce")
		return val, nil
	}
	want := sha512.Sum512(append(append(append([]byte{}, val...), iat...), heldData...))
	if !bytes.Equal(c.ReportData, want[:]) {
		c.Fail("nonce-binding", "report data is not SHA-512(verifier_nonce.val || verifier_nonce.iat || attester_held_data)")
		return nil, attest.Errorf(attest.ErrBinding, "report data", "the report data does not bind the verifier nonce and the attester's held data").
			WithValues(c.ReportData.String(), attest.Hex(want[:]).String()).
			WithFix("request a fresh token; the TEE evidence was made for another nonce")
	}
	c.Pass("nonce-binding")
	return val, nil
}

// itaNonceLocation returns the path of the token's verifier_nonce, or nil
// when it has none. A version 1 token has it at the top level. Version 2
// clients send it inside each attester's object (compositeTdxEvidence in
// Intel's trustauthority-client-for-go, go-tdx/tdx_adapter.go). Intel's own
// version 2 claim model (trustauthority-kbs) has no verifier_nonce, so the
// place where a version 2 token repeats it is undocumented. Both places are
// read, and two different values are ambiguous and rejected.
func itaNonceLocation(claims claimSet, attester teeClaims) ([]string, error) {
	top := []string{"verifier_nonce"}
	topValue, topOK := claims.lookup(top...)
	if len(attester.path) == 0 {
		if topOK {
			return top, nil
		}
		return nil, nil
	}
	nested := attester.at("verifier_nonce")
	nestedValue, nestedOK := claims.lookup(nested...)
	switch {
	case topOK && nestedOK && !reflect.DeepEqual(topValue, nestedValue):
		return nil, attest.Errorf(attest.ErrMalformed, "verifier_nonce, "+attester.field("verifier_nonce"),
			"the token carries two different verifier nonces, so it is ambiguous which one the report data binds").
			WithFix("pass the token as Intel Trust Authority issued it")
	case nestedOK:
		return nested, nil
	case topOK:
		return top, nil
	}
	return nil, nil
}
