package collateral

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLoadPathSpecialFiles(t *testing.T) {
	// No writer ever opens the FIFO, so a loader that opens it blocks.
	fifo := filepath.Join(t.TempDir(), "collateral.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"named pipe", fifo, "is a named pipe, not a regular file"},
		{"character device", "/dev/zero", "is a character device, not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := LoadPath(tt.path)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("LoadPath(%s) = %v, want an error containing %q", tt.path, err, tt.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("LoadPath(%s) still reading after 5s", tt.path)
			}
		})
	}
}
