package main

// The token verifiers register themselves with the attest registry from
// their init function; importing them makes `verify` and `inspect` detect
// Google Confidential Space, Microsoft Azure Attestation and Intel Trust
// Authority tokens.
import (
	_ "github.com/cloister-dev/cloister/tee/token"
)
