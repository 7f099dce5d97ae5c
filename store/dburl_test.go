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

func TestConfigLocation(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"sqlite", Config{DataDir: "/var/lib/cloister"}, "/var/lib/cloister/cloister.db"},
		{"postgres with password", Config{DatabaseURL: "postgres://admin:hunter2-password@db.example:5433/kbs?sslmode=require"}, "postgres://db.example:5433/kbs"},
		{"postgres default port", Config{DatabaseURL: "postgresql://admin@db.example/kbs"}, "postgres://db.example:5432/kbs"},
		{"unparsable", Config{DatabaseURL: "postgres://admin:hunter2-password@db:5432/%zz"}, "an unparsable PostgreSQL URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.Location()
			if got != tc.want {
				t.Errorf("Location() = %q, want %q", got, tc.want)
			}
			if strings.Contains(got, "hunter2") || strings.Contains(got, "admin") {
				t.Errorf("Location() = %q contains a credential", got)
			}
		})
	}
}
