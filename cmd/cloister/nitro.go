package main

// The nitro package registers the AWS Nitro Enclaves verifier with attest
// for verify and inspect, and the Nitro Secure Module attester.
import _ "github.com/cloister-dev/cloister/tee/nitro"
