package ws

import (
	"encoding/binary"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func traceID(i uint64) trace.TraceID {
	var id trace.TraceID
	binary.BigEndian.PutUint64(id[:8], i*0x51afd7ed558ccd)
	binary.BigEndian.PutUint64(id[8:], i)
	return id
}

// TestFrameSampledIsReproducible: the same trace and frame always give the same decision,
// rates 0 and 1 are never and always, and the frames of a trace are traced at the rate.
func TestFrameSampledIsReproducible(t *testing.T) {
	const traces, frames = 50, 400
	for _, rate := range []float64{0, 0.1, 0.5, 1} {
		in := 0
		for i := range uint64(traces) {
			id := traceID(i)
			for n := 3; n < 3+frames; n++ {
				got := frameSampled(id, n, rate)
				if got != frameSampled(id, n, rate) {
					t.Fatalf("trace %s frame %d: two decisions", id, n)
				}
				if got {
					in++
				}
			}
		}
		share := float64(in) / (traces * frames)
		switch {
		case rate == 0 && in != 0, rate == 1 && in != traces*frames:
			t.Errorf("rate %v: %d of %d frames traced", rate, in, traces*frames)
		case share < rate-0.02 || share > rate+0.02:
			t.Errorf("rate %v: %.3f of the frames traced", rate, share)
		}
	}
}

// TestFrameSampledVariesPerTrace: at rate 0.5, traces do not all trace the same frames (the
// decision depends on the trace id, not on the frame number alone).
func TestFrameSampledVariesPerTrace(t *testing.T) {
	pattern := func(id trace.TraceID) (p uint64) {
		for n := 3; n < 67; n++ {
			if frameSampled(id, n, 0.5) {
				p |= 1 << (n - 3)
			}
		}
		return p
	}
	seen := map[uint64]bool{}
	for i := range uint64(20) {
		seen[pattern(traceID(i))] = true
	}
	if len(seen) < 20 {
		t.Errorf("%d distinct frame patterns among 20 traces", len(seen))
	}
}
