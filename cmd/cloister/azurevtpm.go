package main

// The Azure confidential VM (vTPM) verifier registers itself when its
// package loads. It verifies the hardware report with the registered snp
// or dcap verifier.
import _ "github.com/cloister-dev/cloister/tee/azurevtpm"
