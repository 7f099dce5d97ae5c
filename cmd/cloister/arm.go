package main

// The Arm verifiers register themselves with the attest registry from their
// init functions; importing them makes `verify` and `inspect` detect PSA
// attestation tokens and CCA attestation tokens.
import (
	_ "github.com/cloister-dev/cloister/tee/cca"
	_ "github.com/cloister-dev/cloister/tee/psa"
)
