package modelserve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/workloadtest"
)

func TestParseModelRejects(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"not JSON", `{`, "invalid model"},
		{"format", `{"format":"onnx","inputs":1,"layers":[{"weights":[[1]],"bias":[0],"activation":"identity"}]}`, "format"},
		{"no inputs", `{"format":"cloister-mlp/v1","inputs":0,"layers":[{"weights":[[1]],"bias":[0],"activation":"identity"}]}`, "inputs 0"},
		{"no layers", `{"format":"cloister-mlp/v1","inputs":1,"layers":[]}`, "0 layers"},
		{"row width", `{"format":"cloister-mlp/v1","inputs":2,"layers":[{"weights":[[1]],"bias":[0],"activation":"identity"}]}`, "has 1 weights"},
		{"bias count", `{"format":"cloister-mlp/v1","inputs":1,"layers":[{"weights":[[1]],"bias":[],"activation":"identity"}]}`, "0 biases"},
		{"activation", `{"format":"cloister-mlp/v1","inputs":1,"layers":[{"weights":[[1]],"bias":[0],"activation":"gelu"}]}`, "activation"},
		{"unknown field", `{"format":"cloister-mlp/v1","inputs":1,"layers":[{"weights":[[1]],"bias":[0],"activation":"relu"}],"url":"x"}`, "unknown field"},
		{"second layer width", `{"format":"cloister-mlp/v1","inputs":1,"layers":[{"weights":[[1],[1]],"bias":[0,0],"activation":"relu"},{"weights":[[1]],"bias":[0],"activation":"relu"}]}`, "layer 1 row 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseModel([]byte(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseModel() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPredictActivations(t *testing.T) {
	layer := func(a Activation) *Model {
		return &Model{Format: ModelFormat, Inputs: 2, Layers: []Layer{{Weights: [][]float64{{1, 0}, {0, 1}}, Bias: []float64{0, 0}, Activation: a}}}
	}
	tests := []struct {
		a    Activation
		x    []float64
		want []float64
	}{
		{Identity, []float64{-2, 3}, []float64{-2, 3}},
		{ReLU, []float64{-2, 3}, []float64{0, 3}},
		{Sigmoid, []float64{0, 0}, []float64{0.5, 0.5}},
		{Tanh, []float64{0, 1}, []float64{0, math.Tanh(1)}},
		{Softmax, []float64{1000, 1000}, []float64{0.5, 0.5}},
	}
	for _, tt := range tests {
		got, err := layer(tt.a).Predict(tt.x)
		if err != nil {
			t.Fatal(err)
		}
		for i := range tt.want {
			if math.Abs(got[i]-tt.want[i]) > 1e-12 {
				t.Errorf("%s(%v)[%d] = %v, want %v", tt.a, tt.x, i, got[i], tt.want[i])
			}
		}
	}
	if _, err := layer(Identity).Predict([]float64{math.NaN(), 0}); err == nil {
		t.Error("a NaN input was accepted")
	}
}

// The example model computes XOR, and the file is what its generator
// writes.
func TestExampleModelIsXOR(t *testing.T) {
	m, err := ParseModel(exampleModel(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ a, b, want float64 }{{0, 0, 0}, {0, 1, 1}, {1, 0, 1}, {1, 1, 0}} {
		y, err := m.Predict([]float64{c.a, c.b})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(y[0]-c.want) > 1e-4 {
			t.Errorf("xor(%v, %v) = %v, want %v", c.a, c.b, y[0], c.want)
		}
	}
}

func TestEncryptedModelRejects(t *testing.T) {
	key := make([]byte, KeySize)
	rand.Read(key)
	enc, _, err := Encrypt(exampleModel(t), key, keyResource)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEncryptedModel(enc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Decrypt(key); err != nil {
		t.Fatal(err)
	}

	moved := *e
	moved.KeyResource = "models/other/key"
	if _, err := moved.Decrypt(key); err == nil {
		t.Error("the model decrypted under another key resource")
	}
	otherKey := make([]byte, KeySize)
	rand.Read(otherKey)
	if _, err := e.Decrypt(otherKey); err == nil {
		t.Error("the model decrypted under another key")
	}
	if _, err := e.Decrypt(key[:16]); err == nil {
		t.Error("a 16-byte key was accepted")
	} else if !strings.Contains(err.Error(), "store 32 random bytes") {
		t.Errorf("error %q for a 16-byte key does not name the fix", err)
	}
	if _, _, err := Encrypt([]byte(`{"format":"x"}`), key, keyResource); err == nil {
		t.Error("an invalid model was encrypted")
	}
	if _, err := ParseEncryptedModel([]byte(`{"format":"cloister-encrypted-model/v0"}`)); err == nil {
		t.Error("an unknown encrypted format was accepted")
	}
}

// An encrypted model file is one JSON object: a truncated file, or one
// that continues after the object, is rejected before decryption.
func TestParseEncryptedModelRejectsFraming(t *testing.T) {
	key := make([]byte, KeySize)
	rand.Read(key)
	enc, _, err := Encrypt(exampleModel(t), key, keyResource)
	if err != nil {
		t.Fatal(err)
	}
	trimmed := bytes.TrimSpace(enc)
	cases := []struct {
		name, want string
		raw        []byte
	}{
		{"truncated", "unexpected EOF", trimmed[:len(trimmed)/2]},
		{"second object", `continues after the closing "}"`, append(bytes.Clone(trimmed), trimmed...)},
		{"trailing text", `continues after the closing "}"`, append(bytes.Clone(enc), "x"...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseEncryptedModel(c.raw)
			if err == nil {
				t.Fatal("the file was accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
	if _, err := ParseEncryptedModel(enc); err != nil {
		t.Errorf("the file as Encrypt writes it, with its final newline: %v", err)
	}
}

func FuzzParseModel(f *testing.F) {
	f.Add([]byte(`{"format":"cloister-mlp/v1","inputs":2,"layers":[{"weights":[[20,20],[20,20]],"bias":[-10,-30],"activation":"sigmoid"},{"weights":[[20,-20]],"bias":[-10],"activation":"softmax"}]}`))
	f.Add([]byte(`{"format":"cloister-mlp/v1","inputs":1,"layers":[{"weights":[[1e308]],"bias":[1e308],"activation":"relu"}]}`))
	f.Add([]byte(`{"format":"cloister-mlp/v1","inputs":3,"layers":[{"weights":[],"bias":[],"activation":"tanh"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseModel(raw)
		if err != nil {
			return
		}
		x := make([]float64, m.Inputs)
		y, err := m.Predict(x)
		if err != nil {
			return
		}
		if err := checkFinite(y); err != nil {
			t.Errorf("Predict returned a non-finite output: %v", err)
		}
		if len(y) != m.Outputs() {
			t.Errorf("%d outputs, want %d", len(y), m.Outputs())
		}
	})
}

func FuzzParseEncryptedModel(f *testing.F) {
	key := make([]byte, KeySize)
	model := []byte(`{"format":"cloister-mlp/v1","inputs":1,"layers":[{"weights":[[1]],"bias":[0],"activation":"identity"}]}`)
	enc, _, err := Encrypt(model, key, keyResource)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte(`{"format":"cloister-encrypted-model/v1","nonce":"AAAA"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := ParseEncryptedModel(raw)
		if err != nil {
			return
		}
		e.Decrypt(key)
	})
}

// rejectingBroker fails the test when Open requests the model key from it.
type rejectingBroker struct{ t *testing.T }

func (b rejectingBroker) Resource(context.Context, string) ([]byte, error) {
	b.t.Error("Open fetched the model key for a file it should reject")
	return nil, errors.New("no key")
}

// Open checks the size of the encrypted model file before reading it, and
// its error names the file, its size, the limit and the fix. The file is
// sparse, so the test writes no data.
func TestOpenRejectsLargeModelFile(t *testing.T) {
	_, party := workloadtest.NewParty(t, "analyst")
	raw, err := json.Marshal(Manifest{Name: "xor", ModelSHA256: workload.Digest{1}, KeyResource: keyResource, Parties: []Party{party}})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.enc.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(maxEncryptedModel) + 1
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	_, err = Open(context.Background(), m, path, rejectingBroker{t}, workloadtest.QuietLog())
	if err == nil {
		t.Fatal("Open accepted a file larger than the limit")
	}
	for _, want := range []string{
		path,
		fmt.Sprintf("is %d bytes", size),
		fmt.Sprintf("the limit of %d bytes", maxEncryptedModel),
		"encrypt a model of at most",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
