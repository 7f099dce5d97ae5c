package collateral

import (
	"testing"
	"time"
)

// Intel's signed TCB Info and QE Identity carry a "signature" string beside
// the body object, and the body's nextUpdate must still be found.
func TestDocumentNextUpdate(t *testing.T) {
	want := time.Date(2026, 4, 19, 10, 53, 45, 0, time.UTC)
	tests := []struct {
		name string
		doc  string
		want time.Time
	}{
		{"signed TCB Info", `{"tcbInfo":{"id":"TDX","version":3,"nextUpdate":"2026-04-19T10:53:45Z"},"signature":"ab12"}`, want},
		{"signed QE Identity", `{"enclaveIdentity":{"id":"TD_QE","nextUpdate":"2026-04-19T10:53:45Z"},"signature":"ab12"}`, want},
		{"unsigned body", `{"tcbInfo":{"nextUpdate":"2026-04-19T10:53:45Z"}}`, want},
		{"no nextUpdate", `{"tcbInfo":{"id":"SGX"},"signature":"ab12"}`, time.Time{}},
		{"invalid nextUpdate", `{"tcbInfo":{"nextUpdate":"soon"},"signature":"ab12"}`, time.Time{}},
		{"not JSON", `tcbInfo`, time.Time{}},
	}
	for _, tt := range tests {
		if got := documentNextUpdate([]byte(tt.doc)); !got.Equal(tt.want) {
			t.Errorf("%s: documentNextUpdate = %v, want %v", tt.name, got, tt.want)
		}
	}
}
