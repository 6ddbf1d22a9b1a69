package ase

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// hostileShapes build envelopes with n keys in the places a client controls: header
// members, payload item names, parameter members, fields of one payload item, nested
// arrays, and the same with one duplicate key (which takes the encoding/json path).
var hostileShapes = map[string]func(n int) []byte{
	"header-keys": func(n int) []byte {
		return envelope(n, `{"header":{"app_id":"a","status":3`, `,"k%d":"v"`, `}}`)
	},
	"payload-names": func(n int) []byte {
		return envelope(n, `{"header":{"app_id":"a","status":3},"payload":{"p":{"text":"AA=="}`, `,"p%d":{"text":"AA=="}`, `}}`)
	},
	"parameter-keys": func(n int) []byte {
		return envelope(n, `{"header":{"app_id":"a","status":3},"parameter":{"svc":{"x":1`, `,"k%d":1`, `}}}`)
	},
	"payload-fields": func(n int) []byte {
		return envelope(n, `{"header":{"app_id":"a","status":3},"payload":{"p":{"text":"AA=="`, `,"f%d":"v"`, `}}}`)
	},
	"nested-arrays": func(n int) []byte {
		return envelope(n, `{"header":{"app_id":"a","status":3,"x":[0`, `,[%d]`, `]}}`)
	},
	"header-keys-duplicate": func(n int) []byte {
		return envelope(n, `{"header":{"app_id":"a","status":3,"k0":"v"`, `,"k%d":"v"`, `}}`)
	},
	"payload-names-duplicate": func(n int) []byte {
		return envelope(n, `{"header":{"app_id":"a","status":3},"payload":{"p0":{"text":"AA=="}`, `,"p%d":{"text":"AA=="}`, `}}`)
	},
}

func envelope(n int, head, member, tail string) []byte {
	var b bytes.Buffer
	b.Grow(len(head) + n*(len(member)+6) + len(tail))
	b.WriteString(head)
	for i := range n {
		fmt.Fprintf(&b, member, i)
	}
	b.WriteString(tail)
	return b.Bytes()
}

// parseTime is the fastest of three parses of data (the least disturbed by other work).
func parseTime(data []byte) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 3 {
		runtime.GC()
		start := time.Now()
		_, _ = ParseFrame(data, "svc", StatusOnce)
		best = min(best, time.Since(start))
	}
	return best
}

// TestParseIsLinear feeds 10k and 200k keys (5k and 100k under the race detector) in
// every shape and asserts that the parse time grows about linearly: 10× the keys may cost
// at most 50× the time — a quadratic scan costs 100× and more, the old duplicate-key check
// took 34 s for 100k keys. It compares times measured in the same run, never absolute times.
func TestParseIsLinear(t *testing.T) {
	small, large := 10_000, 200_000
	if raceEnabled || testing.Short() {
		small, large = 5_000, 100_000
	}
	for name, build := range hostileShapes {
		t.Run(name, func(t *testing.T) {
			in := build(large)
			f, err := ParseFrame(in, "svc", StatusOnce)
			// Duplicates take the encoding/json path, where the last value wins.
			if err != nil || f == nil {
				t.Fatalf("parse %d keys: %v", large, err)
			}
			base, d := parseTime(build(small)), parseTime(in)
			growth := float64(large) / float64(small)
			ratio := float64(d) / float64(max(base, time.Microsecond))
			t.Logf("%d keys %v, %d keys %v: ×%.1f for ×%.0f keys", small, base, large, d, ratio, growth)
			if ratio > 5*growth {
				t.Fatalf("%d keys took ×%.1f the time of %d keys (want at most ×%.0f): not linear", large, ratio, small, 5*growth)
			}
		})
	}
}
