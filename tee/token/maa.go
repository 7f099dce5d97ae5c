package token

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
)

// snpHostDataSize is the size of HOST_DATA in the SEV-SNP attestation
// report.
const snpHostDataSize = 32

// maaHostSuffix ends the host name of every Microsoft Azure Attestation
// provider (shared ones such as sharedeus2.eus2.attest.azure.net and
// customers' own).
const maaHostSuffix = ".attest.azure.net"

// MAA is the Microsoft Azure Attestation token verifier. Tokens verify
// under the provider's signing keys from the caller's JWKS (the provider's
// certs endpoint).
var MAA = Verifier{is: &issuer{
	tee:         attest.TEEMAAToken,
	service:     "Microsoft Azure Attestation",
	algs:        []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.PS384},
	keys:        keysJWKS,
	validIssuer: validMAAIssuer,
	wantIssuer:  "https://<provider>" + maaHostSuffix,
	mapClaims:   mapMAAClaims,
}}

func init() { attest.Register(MAA) }

func validMAAIssuer(iss string) bool {
	host, ok := issuerHost(iss)
	return ok && strings.HasSuffix(host, maaHostSuffix) && len(host) > len(maaHostSuffix)
}

// The SEV-SNP claims of an MAA token and the TCB component each maps to.
var maaSNPComponents = []struct{ claim, component string }{
	{"x-ms-sevsnpvm-bootloader-svn", "bootloader"},
	{"x-ms-sevsnpvm-tee-svn", "tee"},
	{"x-ms-sevsnpvm-snpfw-svn", "snp"},
	{"x-ms-sevsnpvm-microcode-svn", "microcode"},
}

// maaDirectTypes are the attestation types whose tokens carry the TEE
// claims at the top level. Other types (azurevm) nest them in
// x-ms-isolation-tee.
var maaDirectTypes = []string{"sevsnpvm", "tdxvm", "sgx"}

func mapMAAClaims(claims claimSet, c *attest.Claims) ([][]byte, error) {
	attType, _, err := claims.text("x-ms-attestation-type")
	if err != nil {
		return nil, attest.Malformed("x-ms-attestation-type", "invalid attestation type claim", err)
	}
	c.SetAttribute("x-ms-attestation-type", attType)

	tee := teeClaims{all: claims}
	if !slices.Contains(maaDirectTypes, attType) {
		_, ok, err := claims.object("x-ms-isolation-tee")
		if err != nil {
			return nil, attest.Malformed("x-ms-isolation-tee", "invalid isolation TEE claim", err)
		}
		if ok {
			tee.path = []string{"x-ms-isolation-tee"}
		}
	}
	teeType, _, err := claims.text(tee.at("x-ms-attestation-type")...)
	if err != nil {
		return nil, attest.Malformed(tee.field("x-ms-attestation-type"), "invalid attestation type claim", err)
	}
	c.SetAttribute("isolation_tee", teeType)
	if status, ok, _ := claims.text(tee.at("x-ms-compliance-status")...); ok {
		c.SetAttribute("x-ms-compliance-status", status)
	}
	switch teeType {
	case "sevsnpvm":
		err = mapMAASNP(tee, c)
	case "tdxvm":
		err = mapMAATDX(tee, c)
	case "sgx":
		err = mapMAASGX(tee, c)
	default:
		c.Skip("tee-claims", true, "the isolation TEE "+teeType+" is not mapped: only sevsnpvm, tdxvm and sgx tokens are")
	}
	if err != nil {
		return nil, err
	}
	return maaNonce(claims, c)
}

// mapMAASNP maps the claims of an SEV-SNP token, at the top level or
// nested in x-ms-isolation-tee. Errors name each claim by its full path.
func mapMAASNP(t teeClaims, c *attest.Claims) error {
	debug, ok, err := t.all.boolean(t.at("x-ms-sevsnpvm-is-debuggable")...)
	if err != nil || !ok {
		return attest.Errorf(attest.ErrMalformed, t.field("x-ms-sevsnpvm-is-debuggable"), "the debug claim is missing or not a boolean, so the VM's debug state is unknown").
			WithFix("pass the token as Microsoft Azure Attestation issued it")
	}
	c.Debug = debug

	measurement, ok, err := t.all.hexBytes(t.at("x-ms-sevsnpvm-launchmeasurement")...)
	if err != nil || !ok || len(measurement) != 48 {
		return attest.Errorf(attest.ErrMalformed, t.field("x-ms-sevsnpvm-launchmeasurement"), "the launch measurement claim is missing or not 48 bytes of hexadecimal").
			WithFix("pass the token as Microsoft Azure Attestation issued it")
	}
	c.Measurement = measurement
	c.SetMeasurement("launch_measurement", measurement)

	// The sizes are those of REPORT_DATA and HOST_DATA in the SEV-SNP
	// attestation report.
	hexFields := []struct {
		claim string
		size  int
		out   *attest.Hex
	}{
		{"x-ms-sevsnpvm-reportdata", reportDataSize, &c.ReportData},
		{"x-ms-sevsnpvm-hostdata", snpHostDataSize, &c.HostData},
	}
	for _, f := range hexFields {
		v, _, err := hexClaim(t, f.claim, f.size)
		if err != nil {
			return err
		}
		*f.out = v
	}
	for _, name := range []string{"idkeydigest", "authorkeydigest", "familyId", "imageId"} {
		if v, ok, err := t.all.hexBytes(t.at("x-ms-sevsnpvm-" + name)...); err == nil && ok {
			c.SetMeasurement(strings.ToLower(name), v)
		}
	}
	for _, m := range maaSNPComponents {
		v, ok, err := t.all.integer(t.at(m.claim)...)
		if err != nil {
			return attest.Malformed(t.field(m.claim), "invalid claim", err).
				WithFix("pass the token as Microsoft Azure Attestation issued it, in which each SVN is an integer")
		}
		if !ok {
			continue
		}
		// Each SVN is one byte of the report's TCB_VERSION.
		if v < 0 || v > 255 {
			return attest.Errorf(attest.ErrMalformed, t.field(m.claim), "the SVN %d is outside 0 to 255", v).
				WithFix("pass the token as Microsoft Azure Attestation issued it")
		}
		c.TCB.Components = append(c.TCB.Components, attest.TCBComponent{Name: m.component, Value: uint64(v)})
	}
	for _, name := range []string{"guestsvn", "vmpl", "reportid", "migration-allowed", "smt-allowed"} {
		if v, ok := t.all.lookup(t.at("x-ms-sevsnpvm-" + name)...); ok {
			c.SetAttribute("x-ms-sevsnpvm-"+name, v)
		}
	}
	return nil
}

// mapMAATDX maps the claims of a TDX token: a direct one
// (x-ms-attestation-type tdxvm) or those nested in the x-ms-isolation-tee
// of an Azure confidential VM token. The claim names, including the debug
// claim tdx_td_attributes_debug, are those of Microsoft's TDX EAT profile
// (https://learn.microsoft.com/azure/attestation/trust-domain-extensions-eat-profile)
// and its tdxvm sample token
// (https://learn.microsoft.com/azure/attestation/attestation-token-examples).
//
// NOTE: no published confidential VM token with a tdxvm isolation TEE was
// found. Its nested claims are mapped with the tdxvm names, as the nested
// claims of an SEV-SNP confidential VM token repeat those of a sevsnpvm
// token. Microsoft's own key release policies in
// Azure/confidential-computing-cvm-guest-attestation confirm only the
// nested type tdxvm.
func mapMAATDX(tee teeClaims, c *attest.Claims) error {
	if err := mapTDXClaims(tee, "tdx_td_attributes_debug", c); err != nil {
		return err
	}
	if _, ok := tee.all.lookup(tee.at("attester_tcb_status")...); !ok {
		c.Skip("tcb-status", false, "the token carries no attester_tcb_status: the attestation provider's policy decided on the platform TCB")
		return nil
	}
	return mapIntelTCB(tee, c)
}

// maaSGXClaimNames are the claim names of an MAA SGX token.
//
// NOTE: Microsoft's claim sets do not state the encoding of
// x-ms-sgx-report-data. It is read as hexadecimal, as the other
// x-ms-sgx-* values are and as third-party verifiers read it.
var maaSGXClaimNames = sgxClaimNames{
	debug: "x-ms-sgx-is-debuggable", mrenclave: "x-ms-sgx-mrenclave", mrsigner: "x-ms-sgx-mrsigner",
	isvProdID: "x-ms-sgx-product-id", isvSVN: "x-ms-sgx-svn", reportData: "x-ms-sgx-report-data",
}

// mapMAASGX maps an SGX enclave token (x-ms-attestation-type sgx) by the
// claim names of Microsoft's claim sets
// (https://learn.microsoft.com/azure/attestation/claim-sets). MAA tokens
// carry no TCB status for SGX, because the provider's policy decides.
func mapMAASGX(tee teeClaims, c *attest.Claims) error {
	if err := mapSGXClaims(tee, maaSGXClaimNames, "pass the token as Microsoft Azure Attestation issued it", c); err != nil {
		return err
	}
	c.Skip("tcb-status", false, "MAA SGX tokens carry no TCB status: the attestation provider's policy decided on the platform TCB")
	return checkMAAEnclaveHeldData(tee, c)
}

// checkMAAEnclaveHeldData checks the binding that Microsoft documents for
// SGX attestation. MAA verifies that the first 32 bytes of the quote's
// report data are the SHA-256 hash of the runtime data
// (AttestSgxEnclaveRequest.runtimeData in the Azure SDK). The token repeats
// binary runtime data as x-ms-sgx-ehd, BASE64URL-encoded (claim sets).
// JSON runtime data appears as x-ms-runtime claims instead, whose original
// bytes the token does not carry, so without x-ms-sgx-ehd the binding is
// not checked.
func checkMAAEnclaveHeldData(tee teeClaims, c *attest.Claims) error {
	field := tee.field("x-ms-sgx-ehd")
	text, ok, err := tee.all.text(tee.at("x-ms-sgx-ehd")...)
	if err != nil {
		return attest.Malformed(field, "invalid enclave held data claim", err)
	}
	if !ok {
		c.Skip("enclave-held-data-binding", false, "the token carries no x-ms-sgx-ehd, so no runtime data is bound to the report data")
		return nil
	}
	ehd, err := decodeBase64(text)
	if err != nil {
		return attest.Malformed(field, "invalid enclave held data claim", err)
	}
	c.SetAttribute("enclave_held_data", attest.Hex(ehd).String())
	if len(c.ReportData) == 0 {
		c.Skip("enclave-held-data-binding", false, "the token carries no report data to bind x-ms-sgx-ehd")
		return nil
	}
	want := sha256.Sum256(ehd)
	if !bytes.Equal(c.ReportData[:sha256.Size], want[:]) {
		c.Fail("enclave-held-data-binding", "the first 32 bytes of the report data are not SHA-256(x-ms-sgx-ehd)")
		return attest.Errorf(attest.ErrBinding, tee.field("x-ms-sgx-report-data"), "the first 32 bytes of the report data are not the SHA-256 hash of the enclave held data (x-ms-sgx-ehd)").
			WithValues(attest.Hex(c.ReportData[:sha256.Size]).String(), attest.Hex(want[:]).String()).
			WithFix("request a fresh token, because the quote was made for other runtime data")
	}
	c.Pass("enclave-held-data-binding")
	return nil
}

// maaNonce reads x-ms-runtime.client-payload.nonce, which the client passed
// base64-encoded with its attestation request.
func maaNonce(claims claimSet, c *attest.Claims) ([][]byte, error) {
	s, ok, err := claims.text("x-ms-runtime", "client-payload", "nonce")
	if err != nil {
		return nil, attest.Malformed("x-ms-runtime.client-payload.nonce", "invalid nonce claim", err)
	}
	if !ok {
		return nil, nil
	}
	nonce, err := decodeBase64(s)
	if err != nil {
		return nil, attest.Malformed("x-ms-runtime.client-payload.nonce", "invalid nonce claim", err)
	}
	c.Nonce = nonce
	return [][]byte{nonce}, nil
}
