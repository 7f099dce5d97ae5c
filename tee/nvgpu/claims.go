package nvgpu

import (
	"crypto/x509"
	"strconv"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// newClaims builds the claims of verified GPUs, without the rim and ocsp
// checks, which checkRIMs and checkOCSP record. The top-level claims are
// the first GPU's, and its measurements keep their plain names (fwid,
// blockN). The measurements of each further GPU i follow as gpuI/fwid and
// gpuI/blockN, so that a policy can check every GPU. The default
// attestation policy compares them with the same reference values
// (nvidia-gpu.fwid, nvidia-gpu.blockN). With several GPUs, Attributes["gpus"] lists the
// values of each.
func newClaims(results []*gpuResult, embedded []*x509.Certificate, at time.Time) *attest.Claims {
	first := results[0]
	c := &attest.Claims{
		TEE:         attest.TEENVGPU,
		Product:     product(first.chain),
		TrustAnchor: attest.DescribeRoot(first.chain[len(first.chain)-1], embedded),
		Nonce:       first.report.Request.Nonce[:],
		SigningKey:  "GPU device leaf certificate",
		VerifiedAt:  at,
	}
	c.Emulated = c.TrustAnchor.Kind == attest.AnchorEmulatedRoot
	c.Measurements = gpuMeasurements(first)
	for i, r := range results[1:] {
		for name, value := range gpuMeasurements(r) {
			c.Measurements["gpu"+strconv.Itoa(i+1)+"/"+name] = value
		}
	}
	for name, value := range gpuAttributes(first) {
		c.SetAttribute(name, value)
	}
	for i, cert := range first.chain {
		c.Chain = append(c.Chain, attest.NewCertInfo(chainRole(i, len(first.chain)), cert))
	}
	if len(results) > 1 {
		gpus := make([]map[string]any, len(results))
		for i, r := range results {
			g := gpuAttributes(r)
			g["product"] = product(r.chain)
			g["measurements"] = gpuMeasurements(r)
			g["device_certificate"] = attest.NewCertInfo("device leaf", r.chain[0])
			gpus[i] = g
		}
		c.SetAttribute("gpus", gpus)
	}

	c.Pass("spdm-signature")
	c.Pass("certificate-chain")
	c.Pass("fwid")
	for _, r := range results {
		if r.report.Trailing > 0 {
			c.Warnings = append(c.Warnings, strconv.Itoa(r.report.Trailing)+" zero byte(s) after the report signature were ignored; no signature covers them")
		}
	}
	return c
}

// gpuMeasurements returns the FWID and every measurement block, named
// blockN after the block index.
func gpuMeasurements(r *gpuResult) map[string]attest.Hex {
	m := map[string]attest.Hex{"fwid": r.fwid}
	for _, b := range r.report.Response.Blocks {
		m["block"+strconv.Itoa(int(b.Index))] = b.Value
	}
	return m
}

// gpuAttributes returns the opaque data fields and the SPDM values of one
// GPU.
func gpuAttributes(r *gpuResult) map[string]any {
	a := r.report.Response.Fields.Attributes()
	a["spdm_version"] = "1.1"
	a["responder_nonce"] = attest.Hex(r.report.Response.Nonce[:]).String()
	a["measurement_blocks"] = len(r.report.Response.Blocks)
	if r.evidence.Arch != "" {
		a["arch"] = r.evidence.Arch
	}
	// No signature covers the UUID that the attester sends beside the
	// report, so its name says so: a policy must not identify a GPU by it.
	// The FWID and the device certificate identify the GPU.
	if r.evidence.UUID != "" {
		a["uuid_unverified"] = r.evidence.UUID
	}
	return a
}

func chainRole(i, n int) string {
	switch i {
	case 0:
		return "device leaf"
	case n - 1:
		return "root"
	}
	return "intermediate CA"
}
