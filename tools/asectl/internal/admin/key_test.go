package admin

import (
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	k, err := ParseKey("webgate/v1/apps.json")
	if err != nil || k != (Key{"asf", "default", "webgate", "v1", "apps.json"}) {
		t.Fatalf("short form: %+v %v", k, err)
	}
	if k, err := ParseKey("/p/g/s/v/f/"); err != nil || k.String() != "p/g/s/v/f" {
		t.Fatalf("long form: %+v %v", k, err)
	}
	for _, bad := range []string{"", "a", "a/b", "a/b/c/d", "a//c", "a/b/c/d/e/f"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("asf/default/webgate/v1/apps.json")
	f.Add("atom/1/atom.toml")
	f.Add("a//b")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		for _, p := range []string{k.Project, k.Group, k.Service, k.Version, k.File} {
			if p == "" || strings.Contains(p, "/") {
				t.Fatalf("%q parsed into %+v", s, k)
			}
		}
		if k2, err := ParseKey(k.String()); err != nil || k2 != k {
			t.Fatalf("%q: %+v does not round-trip: %+v %v", s, k, k2, err)
		}
	})
}
