package atom

import (
	"os"
	"testing"
)

func TestAdvertiseAddr(t *testing.T) {
	h, _ := os.Hostname()
	for in, want := range map[string]string{
		"127.0.0.1:9988": "127.0.0.1:9988",
		"[::]:9988":      h + ":9988",
		"0.0.0.0:1":      h + ":1",
		"atom-0:9988":    "atom-0:9988",
		"junk":           "junk",
	} {
		if got := advertiseAddr(in); got != want {
			t.Errorf("advertiseAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
