package main

// The nvgpu package registers the NVIDIA GPU verifier with attest for
// verify and inspect.
import _ "github.com/cloister-dev/cloister/tee/nvgpu"
