package psa

// TestKeys maps the SHA-256 fingerprints of DER SubjectPublicKeyInfo of
// IAKs whose private keys are published for testing to their names. A token
// signed by one of them proves its format, never genuine hardware.
var TestKeys = map[string]string{
	// The P-256 IAK that TF-M uses by default and that the veraison
	// psatoken test vectors are signed with.
	"7b1a17147ca907e16cad79901fef13991ec6206e3d148b657068ad6c4cba4626": "TF-M default test IAK (private key published)",
	// The P-256 example IAK of the PSA token specification's examples.
	"45d852b8ab34e60e66d904c289f945edadf3de2446e8eaf61df17333ac5fd8e2": "PSA token specification example IAK (private key published)",
}
