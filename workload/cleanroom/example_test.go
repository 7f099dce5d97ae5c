package cleanroom

import (
	"bytes"
	"testing"
)

// TestExampleFilesCurrent checks that examples/cleanroom holds what
// generate.go writes, so the files and the quickstart's data agree.
func TestExampleFilesCurrent(t *testing.T) {
	m, _, err := ParseManifest(readExample(t, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{
		"bank_a_fraud.csv": ExampleReports("A", 400),
		"bank_b_fraud.csv": ExampleReports("B", 400),
		"manifest.json":    ExampleManifest(m.Parties[0].KeySHA256, m.Parties[1].KeySHA256),
	}
	for name, data := range want {
		if !bytes.Equal(readExample(t, name), data) {
			t.Errorf("%s differs from its generator; run go run ./examples/cleanroom/generate.go", name)
		}
	}
}
