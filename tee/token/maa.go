package token

import (
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
)

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
	u, err := url.Parse(iss)
	return err == nil && u.Scheme == "https" && strings.HasSuffix(u.Host, maaHostSuffix) && len(u.Host) > len(maaHostSuffix)
}

// The SEV-SNP claims of an MAA token and the TCB component each maps to.
var maaSNPComponents = []struct{ claim, component string }{
	{"x-ms-sevsnpvm-bootloader-svn", "bootloader"},
	{"x-ms-sevsnpvm-tee-svn", "tee"},
	{"x-ms-sevsnpvm-snpfw-svn", "snp"},
	{"x-ms-sevsnpvm-microcode-svn", "microcode"},
}

func mapMAAClaims(claims claimSet, c *attest.Claims) ([][]byte, error) {
	attType, _, err := claims.text("x-ms-attestation-type")
	if err != nil {
		return nil, attest.Malformed("x-ms-attestation-type", "invalid attestation type claim", err)
	}
	c.SetAttribute("x-ms-attestation-type", attType)

	// A confidential VM token (azurevm) nests the TEE claims in
	// x-ms-isolation-tee; a direct SEV-SNP token has them at the top.
	tee := claims
	if attType != "sevsnpvm" {
		nested, ok, err := claims.object("x-ms-isolation-tee")
		if err != nil {
			return nil, attest.Malformed("x-ms-isolation-tee", "invalid isolation TEE claim", err)
		}
		if ok {
			tee = nested
		}
	}
	teeType, _, _ := tee.text("x-ms-attestation-type")
	c.SetAttribute("isolation_tee", teeType)
	if status, ok, _ := tee.text("x-ms-compliance-status"); ok {
		c.SetAttribute("x-ms-compliance-status", status)
	}
	if teeType != "sevsnpvm" {
		// TODO: map the claims of Azure TDX confidential VM tokens.
		c.Skip("tee-claims", true, "the isolation TEE "+teeType+" is not mapped: only sevsnpvm tokens are")
		return maaNonce(claims, c)
	}
	if err := mapMAASNP(tee, c); err != nil {
		return nil, err
	}
	return maaNonce(claims, c)
}

func mapMAASNP(tee claimSet, c *attest.Claims) error {
	debug, ok, err := tee.boolean("x-ms-sevsnpvm-is-debuggable")
	if err != nil || !ok {
		return attest.Errorf(attest.ErrMalformed, "x-ms-sevsnpvm-is-debuggable", "the debug claim is missing or not a boolean, so the VM's debug state is unknown")
	}
	c.Debug = debug

	measurement, ok, err := tee.hexBytes("x-ms-sevsnpvm-launchmeasurement")
	if err != nil || !ok || len(measurement) != 48 {
		return attest.Errorf(attest.ErrMalformed, "x-ms-sevsnpvm-launchmeasurement", "the launch measurement claim is missing or not 48 bytes of hexadecimal")
	}
	c.Measurement = measurement
	c.SetMeasurement("launch_measurement", measurement)

	hexFields := []struct {
		claim string
		out   *attest.Hex
	}{
		{"x-ms-sevsnpvm-reportdata", &c.ReportData},
		{"x-ms-sevsnpvm-hostdata", &c.HostData},
	}
	for _, f := range hexFields {
		v, _, err := tee.hexBytes(f.claim)
		if err != nil {
			return attest.Malformed(f.claim, "invalid claim", err)
		}
		*f.out = v
	}
	for _, name := range []string{"idkeydigest", "authorkeydigest", "familyId", "imageId"} {
		if v, ok, err := tee.hexBytes("x-ms-sevsnpvm-" + name); err == nil && ok {
			c.SetMeasurement(strings.ToLower(name), v)
		}
	}
	for _, m := range maaSNPComponents {
		v, ok, err := tee.integer(m.claim)
		if err != nil {
			return attest.Malformed(m.claim, "invalid claim", err)
		}
		if ok && v >= 0 {
			c.TCB.Components = append(c.TCB.Components, attest.TCBComponent{Name: m.component, Value: uint64(v)})
		}
	}
	for _, name := range []string{"guestsvn", "vmpl", "reportid", "migration-allowed", "smt-allowed"} {
		if v, ok := tee.lookup("x-ms-sevsnpvm-" + name); ok {
			c.SetAttribute("x-ms-sevsnpvm-"+name, v)
		}
	}
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
