package transport

import (
	"fmt"
	"testing"
)

func TestCapabilityLabelBounded(t *testing.T) {
	m := NewMetrics(nil)
	for i := range maxCapabilities {
		if got := m.capability(fmt.Sprint("cap", i)); got != fmt.Sprint("cap", i) {
			t.Fatalf("label %q", got)
		}
	}
	if got := m.capability("one-too-many"); got != "other" {
		t.Fatalf("label past the bound = %q", got)
	}
	if got := m.capability("cap7"); got != "cap7" {
		t.Fatalf("known label = %q", got)
	}
	if got := m.capability(""); got != "unknown" {
		t.Fatalf("empty label = %q", got)
	}
}
