package main

// The composite package registers the verifier of a CPU report appraised
// together with NVIDIA GPU reports whose nonces it binds.
import _ "github.com/cloister-dev/cloister/tee/composite"
