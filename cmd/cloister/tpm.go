package main

// The TPM 2.0 quote verifier and the /dev/tpmrm0 attester register
// themselves when their package loads.
import _ "github.com/cloister-dev/cloister/tee/tpm"
