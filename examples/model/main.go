// Command model writes the example model of the model-serving workload:
// a two-layer perceptron that computes XOR of two inputs in [0, 1]. Its
// weights are fixed numbers, so every run writes the same bytes and the
// same SHA-256, which a model-serving manifest names.
//
//	go run ./examples/model > examples/model/xor-mlp.json
//
// The hidden layer computes OR (unit 0) and AND (unit 1) of the inputs;
// the output is OR and not AND. A weight of 20 makes each sigmoid output
// within 5e-5 of 0 or 1 at the corners of the unit square.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/cloister-dev/cloister/workload/modelserve"
)

func main() {
	m := modelserve.Model{
		Format: modelserve.ModelFormat,
		Name:   "xor-mlp",
		Inputs: 2,
		Layers: []modelserve.Layer{
			{
				Weights:    [][]float64{{20, 20}, {20, 20}},
				Bias:       []float64{-10, -30},
				Activation: modelserve.Sigmoid,
			},
			{
				Weights:    [][]float64{{20, -20}},
				Bias:       []float64{-10},
				Activation: modelserve.Sigmoid,
			},
		},
	}
	if err := m.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}
