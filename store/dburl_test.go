package store

import (
	"strings"
	"testing"
)

func TestOpenPostgresURLErrors(t *testing.T) {
	cases := []struct {
		name, url, want string
	}{
		{"mysql scheme", "mysql://admin:hunter2-password@db:3306/cloister", `scheme "mysql"`},
		{"not a URL", "postgres://admin:hunter2-password@db:5432/%zz", "not a valid URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openPostgres(tc.url)
			if err == nil {
				t.Fatal("openPostgres accepted the URL")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}
