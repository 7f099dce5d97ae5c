package composite

import (
	"fmt"
	"maps"

	"github.com/cloister-dev/cloister/attest"
)

// merge builds the composite claims: the CPU's claims under TEE
// "composite", with each GPU's claims in Attributes["gpus"], its checks
// prefixed "gpuN/", its FWID as measurement "gpuN/fwid", and its warnings
// and collateral added. The GPU's measurement blocks stay in its own
// claims, because a Hopper report carries 64 of them, most of them zero.
// Debug and Emulated are true when any part is.
func merge(cpu *attest.Claims, gpus []*attest.Claims) *attest.Claims {
	c := *cpu
	c.TEE = TEE
	c.Measurements = maps.Clone(cpu.Measurements)
	c.Attributes = maps.Clone(cpu.Attributes)
	c.Checks = append([]attest.Check(nil), cpu.Checks...)
	c.Warnings = append([]string(nil), cpu.Warnings...)
	c.Collateral = append([]attest.CollateralRef(nil), cpu.Collateral...)
	c.SetAttribute("cpu_tee", string(cpu.TEE))

	for i, gpu := range gpus {
		prefix := fmt.Sprintf("gpu%d/", i)
		for _, check := range gpu.Checks {
			check.Name = prefix + check.Name
			c.Checks = append(c.Checks, check)
		}
		if fwid, ok := gpu.Measurements["fwid"]; ok {
			c.SetMeasurement(prefix+"fwid", fwid)
		}
		for _, w := range gpu.Warnings {
			c.Warnings = append(c.Warnings, fmt.Sprintf("GPU %d: %s", i, w))
		}
		c.Collateral = append(c.Collateral, gpu.Collateral...)
		c.Debug = c.Debug || gpu.Debug
		c.Emulated = c.Emulated || gpu.Emulated
	}
	c.SetAttribute("gpus", gpus)
	return &c
}
