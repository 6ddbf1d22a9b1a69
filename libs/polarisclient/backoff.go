package polarisclient

import (
	"math/rand/v2"
	"time"
)

// Backoff spaces retries after failures: Min, doubling per failure up to Max, with
// ±20% jitter so replicas do not retry in step.
type Backoff struct {
	Min time.Duration
	Max time.Duration
}

// DefaultBackoff is the retry spacing of reconnects.
var DefaultBackoff = Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = DefaultBackoff.Min
	}
	if b.Max < b.Min {
		b.Max = max(b.Min, DefaultBackoff.Max)
	}
	return b
}

// Delay returns the wait before retry number attempt (0-based).
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.withDefaults()
	d := b.Min
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	j := time.Duration(rand.Int64N(int64(d)/5+1)) * 2
	return d - d/5 + j
}
