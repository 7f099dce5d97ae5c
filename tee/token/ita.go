package token

import (
	"bytes"
	"crypto/sha512"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

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
	u, err := url.Parse(iss)
	return err == nil && u.Scheme == "https" && (u.Host == "trustauthority.intel.com" || strings.HasSuffix(u.Host, ".trustauthority.intel.com"))
}

func mapITAClaims(claims claimSet, c *attest.Claims) ([][]byte, error) {
	attesterType, _, err := claims.text("attester_type")
	if err != nil {
		return nil, attest.Malformed("attester_type", "invalid attester type claim", err)
	}
	c.SetAttribute("attester_type", attesterType)
	if err := mapITATCB(claims, c); err != nil {
		return nil, err
	}
	switch attesterType {
	case "TDX":
		if err := mapITATDX(claims, c); err != nil {
			return nil, err
		}
	case "SGX":
		if err := mapITASGX(claims, c); err != nil {
			return nil, err
		}
	default:
		c.Skip("tee-claims", true, "attester type "+attesterType+" is not mapped: only TDX and SGX tokens are")
	}
	nonce, err := itaNonce(claims, c)
	if err != nil {
		return nil, err
	}
	if nonce == nil {
		return nil, nil
	}
	return [][]byte{nonce}, nil
}

// itaStatuses are the TCB statuses Intel derives from its TCB Info, the
// only values attester_tcb_status may take.
var itaStatuses = []string{
	attest.TCBUpToDate, attest.TCBSWHardeningNeeded, attest.TCBConfigurationNeeded,
	attest.TCBConfigurationAndSWHardeningNeeded, attest.TCBOutOfDate,
	attest.TCBOutOfDateConfigurationNeeded, attest.TCBRevoked, attest.TCBNotDetermined,
}

// itaRelaunchStatuses maps the two statuses with which Intel's quote
// verification library advises a TD relaunch to the launch-time status
// that Cloister keeps beside attest.TCB.RelaunchAdvised.
//
// NOTE: QVL also reports TDRelaunchAdvisedConfigurationNeeded when only the
// platform's SGX level needs configuration. The token does not say which,
// so this maps to OutOfDateConfigurationNeeded, which may be stricter than
// what the DCAP verifier derives from the same quote, never more lenient.
var itaRelaunchStatuses = map[string]string{
	"TDRelaunchAdvised":                    attest.TCBOutOfDate,
	"TDRelaunchAdvisedConfigurationNeeded": attest.TCBOutOfDateConfigurationNeeded,
}

// mapITATCB maps the TCB status, date and advisories that Intel Trust
// Authority derived from Intel's TCB Info for the attester.
func mapITATCB(claims claimSet, c *attest.Claims) error {
	status, ok, err := claims.text("attester_tcb_status")
	if err != nil {
		return attest.Malformed("attester_tcb_status", "invalid TCB status claim", err)
	}
	if !ok {
		status = attest.TCBNotDetermined
	}
	if launch, ok := itaRelaunchStatuses[status]; ok {
		status = launch
		c.TCB.RelaunchAdvised = true
	}
	if !slices.Contains(itaStatuses, status) {
		return attest.Malformed("attester_tcb_status", fmt.Sprintf("TCB status %q is not one of Intel's (%s)", status, strings.Join(itaStatuses, ", ")), nil).
			WithFix("pass the token as Intel Trust Authority issued it")
	}
	c.TCB.Status = status
	advisories, _, err := claims.textList("attester_advisory_ids")
	if err != nil {
		return attest.Malformed("attester_advisory_ids", "invalid advisory claim", err)
	}
	c.TCB.AdvisoryIDs = advisories
	if s, ok, _ := claims.text("attester_tcb_date"); ok {
		if d, err := time.Parse(time.RFC3339, s); err == nil {
			c.TCB.Date = &d
		}
	}
	return nil
}

// itaTDXMeasurements are the TD report fields an ITA token carries, by
// claim name and measurement name.
var itaTDXMeasurements = []struct{ claim, name string }{
	{"tdx_mrtd", "mrtd"},
	{"tdx_mrseam", "mrseam"},
	{"tdx_mrsignerseam", "mrsignerseam"},
	{"tdx_mrowner", "mrowner"},
	{"tdx_mrownerconfig", "mrownerconfig"},
	{"tdx_mrconfigid", "mrconfigid"},
	{"tdx_rtmr0", "rtmr0"},
	{"tdx_rtmr1", "rtmr1"},
	{"tdx_rtmr2", "rtmr2"},
	{"tdx_rtmr3", "rtmr3"},
}

func mapITATDX(claims claimSet, c *attest.Claims) error {
	debug, ok, err := claims.boolean("tdx_is_debuggable")
	if err != nil || !ok {
		return attest.Errorf(attest.ErrMalformed, "tdx_is_debuggable", "the debug claim is missing or not a boolean, so the TD's debug state is unknown")
	}
	c.Debug = debug
	for _, m := range itaTDXMeasurements {
		v, ok, err := claims.hexBytes(m.claim)
		if err != nil {
			return attest.Malformed(m.claim, "invalid measurement claim", err)
		}
		if ok {
			c.SetMeasurement(m.name, v)
		}
	}
	if len(c.Measurements["mrtd"]) != 48 {
		return attest.Errorf(attest.ErrMalformed, "tdx_mrtd", "the MRTD claim is missing or not 48 bytes")
	}
	c.Measurement = c.Measurements["mrtd"]
	c.HostData = c.Measurements["mrconfigid"]
	return mapReportData(claims, c, "tdx_report_data")
}

func mapITASGX(claims claimSet, c *attest.Claims) error {
	debug, ok, err := claims.boolean("sgx_is_debuggable")
	if err != nil || !ok {
		return attest.Errorf(attest.ErrMalformed, "sgx_is_debuggable", "the debug claim is missing or not a boolean, so the enclave's debug state is unknown")
	}
	c.Debug = debug
	for _, name := range []string{"mrenclave", "mrsigner"} {
		v, ok, err := claims.hexBytes("sgx_" + name)
		if err != nil {
			return attest.Malformed("sgx_"+name, "invalid measurement claim", err)
		}
		if ok {
			c.SetMeasurement(name, v)
		}
	}
	if len(c.Measurements["mrenclave"]) != 32 {
		return attest.Errorf(attest.ErrMalformed, "sgx_mrenclave", "the MRENCLAVE claim is missing or not 32 bytes")
	}
	c.Measurement = c.Measurements["mrenclave"]
	return mapReportData(claims, c, "sgx_report_data")
}

func mapReportData(claims claimSet, c *attest.Claims, name string) error {
	v, _, err := claims.hexBytes(name)
	if err != nil {
		return attest.Malformed(name, "invalid report data claim", err)
	}
	c.ReportData = v
	return nil
}

// itaNonce reads verifier_nonce and checks its binding: Intel Trust
// Authority issues val and iat, the attester puts SHA-512(val || iat ||
// attester_held_data) into its report data, and the token repeats all of
// them. A token whose report data does not bind its nonce is rejected.
func itaNonce(claims claimSet, c *attest.Claims) ([]byte, error) {
	valText, ok, err := claims.text("verifier_nonce", "val")
	if err != nil {
		return nil, attest.Malformed("verifier_nonce.val", "invalid nonce claim", err)
	}
	if !ok {
		return nil, nil
	}
	val, err := decodeBase64(valText)
	if err != nil {
		return nil, attest.Malformed("verifier_nonce.val", "invalid nonce claim", err)
	}
	c.Nonce = val
	c.Skip("verifier-nonce-signature", false, "the signature of verifier_nonce is not checked: the token signature already covers the nonce")

	iatText, _, err := claims.text("verifier_nonce", "iat")
	if err != nil {
		return nil, attest.Malformed("verifier_nonce.iat", "invalid nonce claim", err)
	}
	iat, err := decodeBase64(iatText)
	if err != nil {
		return nil, attest.Malformed("verifier_nonce.iat", "invalid nonce claim", err)
	}
	var heldData []byte
	if s, ok, _ := claims.text("attester_held_data"); ok {
		if heldData, err = decodeBase64(s); err != nil {
			return nil, attest.Malformed("attester_held_data", "invalid held data claim", err)
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
