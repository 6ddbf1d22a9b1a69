package asfbench

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram precision: 2^subBits buckets per power of two, so a recorded value
// is known to within 1/2^subBits (0.8 %).
const (
	subBits  = 7
	subCount = 1 << subBits
	// maxExp bounds the range: values up to 2^(maxExp+subBits) µs (about 71 minutes).
	maxExp     = 25
	numBuckets = (maxExp + 2) * subCount
)

// Histogram counts latencies in microseconds in log-linear buckets (HDR-style): exact below
// 128 µs, within 0.8 % above. The zero value is ready to use; it is not safe for concurrent use.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sumUS  uint64
	minUS  uint64
	maxUS  uint64
}

// bucketOf returns the bucket index of v (µs).
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // shift that leaves subBits+1 significant bits
	if e > maxExp {
		return numBuckets - 1
	}
	m := v >> uint(e) // in [subCount, 2*subCount)
	return (e+1)*subCount + int(m-subCount)
}

// bucketBounds returns the smallest and largest value (µs) held by bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	e := uint(i/subCount - 1)
	m := uint64(i%subCount + subCount)
	return m << e, (m+1)<<e - 1
}

// Record adds one latency. Negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[bucketOf(us)]++
	if h.n == 0 || us < h.minUS {
		h.minUS = us
	}
	if us > h.maxUS {
		h.maxUS = us
	}
	h.n++
	h.sumUS += us
}

// Merge adds every count of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.minUS < h.minUS {
		h.minUS = o.minUS
	}
	if o.maxUS > h.maxUS {
		h.maxUS = o.maxUS
	}
	h.n += o.n
	h.sumUS += o.sumUS
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Mean returns the mean latency (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sumUS/h.n) * time.Microsecond
}

// Max returns the largest recorded latency.
func (h *Histogram) Max() time.Duration { return time.Duration(h.maxUS) * time.Microsecond }

// Min returns the smallest recorded latency.
func (h *Histogram) Min() time.Duration { return time.Duration(h.minUS) * time.Microsecond }

// Quantile returns the latency at quantile q in [0,1] by the nearest-rank rule: the smallest
// recorded value v such that at least ceil(q·n) values are ≤ v, to within the bucket precision.
// It returns 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.Min()
	}
	if q >= 1 {
		return h.Max()
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketBounds(i)
			v := lo + (hi-lo)/2
			v = max(v, h.minUS)
			v = min(v, h.maxUS)
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}
