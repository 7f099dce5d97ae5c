package server

import (
	"net/http"
	"testing"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/store"
)

// adminForTest returns a constructor of the admin API handler over a
// service's store.
func adminForTest(t *testing.T) func(st store.Store) http.Handler {
	return func(st store.Store) http.Handler {
		h, err := admin.NewHandler(admin.Config{Store: st, APIKey: "test-admin-key-0123456789abcdef",
			Logger: quietLogger(), ValidatePolicy: ValidatePolicy})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
}
