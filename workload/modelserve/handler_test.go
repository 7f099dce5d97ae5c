package modelserve

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/workload/workloadtest"
)

// Errors about one input of a predict body count the arrays from 1, as
// the body decoder does, so that both point at the same array.
func TestPredictErrorsNameArray(t *testing.T) {
	d := newDeployment(t)
	s, err := Open(context.Background(), d.m, d.model, d.broker.TEEClient(t, d.tee), workloadtest.QuietLog())
	if err != nil {
		t.Fatal(err)
	}
	addr := workloadtest.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return Serve(ctx, ln, d.tee, s, workloadtest.QuietLog())
	})
	hc := workloadtest.NewClient(t, addr, workloadtest.Expect(d.tee, d.digest, testMeasurement), d.party).HTTPClient()

	cases := []struct {
		name, body string
		want       []string
	}{
		{"first array too long", `{"inputs":[[0,0,0],[0,0]]}`, []string{"inputs: array 1: "}},
		{"second array too short", `{"inputs":[[0,0],[1]]}`, []string{"inputs: array 2: ", "1 numbers", "2 inputs"}},
		{"second array overflows", `{"inputs":[[0,0],[-1e308,1e308]]}`, []string{"inputs: array 2: ", "overflows"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := hc.Post("https://workload/v1/predict", "application/json", strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("error response %q: %v", raw, err)
			}
			for _, want := range c.want {
				if !strings.Contains(e.Error, want) {
					t.Errorf("error %q does not contain %q", e.Error, want)
				}
			}
		})
	}
}
