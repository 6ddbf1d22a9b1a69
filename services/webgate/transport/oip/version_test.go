package oip

import "testing"

func TestVersion(t *testing.T) {
	for path, want := range map[string]string{
		"/v2/models/echo/versions/2/infer": "2",
		"/v2/models/echo/versions/1.0/":    "1.0",
		"/v2/models/echo/versions/7":       "7",
		"/v2/models/echo/infer":            "",
		"/v2/models/echo":                  "",
		"/v2/models/":                      "",
	} {
		if got := Version(path); got != want {
			t.Errorf("Version(%q) = %q, want %q", path, got, want)
		}
	}
}
