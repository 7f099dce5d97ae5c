package modelserve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// ModelFormat is the value of Model.Format.
const ModelFormat = "cloister-mlp/v1"

// Limits of a model, so that a model file cannot exhaust memory.
const (
	MaxLayers     = 64
	MaxWidth      = 1 << 14
	MaxParameters = 1 << 24
)

// Activation names a layer's activation function.
type Activation string

// The supported activations. Softmax normalizes the layer's outputs to
// probabilities.
const (
	Identity Activation = "identity"
	ReLU     Activation = "relu"
	Sigmoid  Activation = "sigmoid"
	Tanh     Activation = "tanh"
	Softmax  Activation = "softmax"
)

// Model is a multilayer perceptron: each layer computes
// activation(weights × input + bias).
type Model struct {
	Format string `json:"format"`
	Name   string `json:"name"`
	// Inputs is the length of an input vector.
	Inputs int     `json:"inputs"`
	Layers []Layer `json:"layers"`
}

// Layer is one fully connected layer. Weights has one row per output,
// each with one column per input of the layer.
type Layer struct {
	Weights    [][]float64 `json:"weights"`
	Bias       []float64   `json:"bias"`
	Activation Activation  `json:"activation"`
}

// ParseModel decodes and validates a model's JSON.
func ParseModel(raw []byte) (*Model, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m Model
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("invalid model: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the shapes, the limits and that every parameter is
// finite.
func (m *Model) Validate() error {
	if m.Format != ModelFormat {
		return fmt.Errorf("invalid model: format %q, want %q", m.Format, ModelFormat)
	}
	if m.Inputs < 1 || m.Inputs > MaxWidth {
		return fmt.Errorf("invalid model: inputs %d is out of range: use 1 to %d", m.Inputs, MaxWidth)
	}
	if len(m.Layers) == 0 || len(m.Layers) > MaxLayers {
		return fmt.Errorf("invalid model: %d layers, want 1 to %d", len(m.Layers), MaxLayers)
	}
	width, params := m.Inputs, 0
	for i, l := range m.Layers {
		if len(l.Weights) == 0 || len(l.Weights) > MaxWidth {
			return fmt.Errorf("invalid model: layer %d has %d outputs, want 1 to %d", i, len(l.Weights), MaxWidth)
		}
		if len(l.Bias) != len(l.Weights) {
			return fmt.Errorf("invalid model: layer %d has %d biases for %d outputs", i, len(l.Bias), len(l.Weights))
		}
		for j, row := range l.Weights {
			if len(row) != width {
				return fmt.Errorf("invalid model: layer %d row %d has %d weights, but the layer has %d inputs", i, j, len(row), width)
			}
			params += len(row) + 1
			if params > MaxParameters {
				return fmt.Errorf("invalid model: more than %d parameters", MaxParameters)
			}
			if err := checkFinite(row); err != nil {
				return fmt.Errorf("invalid model: layer %d row %d: %w", i, j, err)
			}
		}
		if err := checkFinite(l.Bias); err != nil {
			return fmt.Errorf("invalid model: layer %d bias: %w", i, err)
		}
		switch l.Activation {
		case Identity, ReLU, Sigmoid, Tanh, Softmax:
		default:
			return fmt.Errorf("invalid model: layer %d activation %q: use identity, relu, sigmoid, tanh or softmax", i, l.Activation)
		}
		width = len(l.Weights)
	}
	return nil
}

// Outputs returns the length of a prediction.
func (m *Model) Outputs() int { return len(m.Layers[len(m.Layers)-1].Weights) }

// Predict evaluates the model on x, which must have m.Inputs finite
// elements. An output that overflows to an infinity or NaN is an error.
func (m *Model) Predict(x []float64) ([]float64, error) {
	if len(x) != m.Inputs {
		return nil, fmt.Errorf("the array has %d numbers, but the model takes %d inputs: send arrays of %d numbers", len(x), m.Inputs, m.Inputs)
	}
	if err := checkFinite(x); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	for _, l := range m.Layers {
		out := make([]float64, len(l.Weights))
		for i, row := range l.Weights {
			s := l.Bias[i]
			for j, w := range row {
				s += w * x[j]
			}
			out[i] = s
		}
		activate(l.Activation, out)
		x = out
	}
	// Finite weights can still overflow, and JSON has no NaN or Inf.
	for i, y := range x {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			return nil, fmt.Errorf("the model's output overflows for this input: output %d of %d is %v; send inputs of smaller magnitude", i+1, len(x), y)
		}
	}
	return x, nil
}

func activate(a Activation, v []float64) {
	switch a {
	case ReLU:
		for i, x := range v {
			v[i] = max(x, 0)
		}
	case Sigmoid:
		for i, x := range v {
			v[i] = 1 / (1 + math.Exp(-x))
		}
	case Tanh:
		for i, x := range v {
			v[i] = math.Tanh(x)
		}
	case Softmax:
		// Subtracting the maximum keeps exp from overflowing.
		top := math.Inf(-1)
		for _, x := range v {
			top = max(top, x)
		}
		var sum float64
		for i, x := range v {
			v[i] = math.Exp(x - top)
			sum += v[i]
		}
		for i := range v {
			v[i] /= sum
		}
	}
}

func checkFinite(v []float64) error {
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("element %d is %v: every value must be finite", i, x)
		}
	}
	return nil
}
