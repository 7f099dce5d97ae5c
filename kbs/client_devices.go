package kbs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloister-dev/cloister/attest"
)

// DeviceTEE returns the KBS tee name under which the client sends the
// evidence of a device attester: the attester's name without an
// "emulated-" prefix, with the nvidia-gpu verifier's evidence sent as
// nvidia, as Trustee's guest names it. It returns an error for a name that
// is not a KBS tee.
func DeviceTEE(d attest.Attester) (string, error) {
	name := strings.TrimPrefix(d.Name(), "emulated-")
	if name == string(attest.TEENVGPU) {
		name = "nvidia"
	}
	if !knownTEEs[name] {
		return "", fmt.Errorf("device attester %s has no KBS tee name (%s is not one); use an attester of a device the protocol names, such as nvidia", d.Name(), name)
	}
	return name, nil
}

// additionalEvidence returns the additional_evidence string of the
// Attestation: "" without devices, or else the JSON object of each
// device's tee name to its evidence envelope, with the names sorted. Each
// device's evidence binds the device runtime-data digest, placed as
// ReportDataFor places it for the device's tee.
func (c *Client) additionalEvidence(ctx context.Context, h HashAlgorithm, nonce string, key TEEPubKey) (string, error) {
	if len(c.Devices) == 0 {
		return "", nil
	}
	digest, err := DeviceDigest(h, nonce, key)
	if err != nil {
		return "", err
	}
	evidence := make(map[string]json.RawMessage, len(c.Devices))
	for _, d := range c.Devices {
		tee, err := DeviceTEE(d)
		if err != nil {
			return "", err
		}
		if _, dup := evidence[tee]; dup {
			return "", fmt.Errorf("two device attesters send %s evidence, but additional_evidence has one member per tee; give one attester for all devices of a tee", tee)
		}
		ev, err := d.Attest(ctx, ReportDataFor(tee, digest))
		if err != nil {
			return "", fmt.Errorf("evidence from device %s: %w", d.Name(), err)
		}
		if evidence[tee], err = json.Marshal(ev); err != nil {
			return "", err
		}
	}
	// encoding/json writes map keys sorted, so the string, which the
	// primary evidence binds byte for byte, does not depend on the order
	// of Devices.
	out, err := json.Marshal(evidence)
	if err != nil {
		return "", err
	}
	return string(out), nil
}
