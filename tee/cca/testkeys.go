package cca

// TestKeys maps the SHA-256 fingerprints of DER SubjectPublicKeyInfo of
// CPAKs whose private keys are published for testing to their names. A token
// signed by one of them proves its format and binding, never hardware.
var TestKeys = map[string]string{
	// The P-384 CPAK of the TF-M tools iat-verifier test data, which the
	// TF-RMM example tokens and the veraison ccatoken vectors use.
	"0928f896cb02326566530a62a1e36329a12d0a4a308f4fc81e8ff5560bca6bca": "TF-RMM test CPAK (private key published)",
}
