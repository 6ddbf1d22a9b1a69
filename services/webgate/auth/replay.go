package auth

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReplayCacheSize is the number of signatures a ReplayCache remembers when no size
// is given: about 870 signed requests a second over a 300 s skew, in some 20 MB.
const DefaultReplayCacheSize = 1 << 18

// replayKey is the first 16 bytes of a verified signature: an HMAC output is uniform, so
// two distinct signatures share them with negligible probability.
type replayKey [16]byte

type replayEntry struct {
	key     replayKey
	expires int64 // unix nanoseconds
}

// ReplayCache remembers verified signatures until their date leaves the clock skew, so a
// second use of one is refused. Memory is bounded: it holds at most size signatures; when
// full, the oldest recorded goes first (a replay of it within its remaining window is then
// not detected, which Evictions counts). It is safe for concurrent use.
type ReplayCache struct {
	mu    sync.Mutex
	size  int
	seen  map[replayKey]int64 // key → when its date leaves the skew (unix ns)
	order []replayEntry       // ring of recorded keys, oldest at head
	head  int
	n     int

	evictions atomic.Int64
}

// NewReplayCache returns an empty cache of at most size signatures (≤ 0:
// DefaultReplayCacheSize).
func NewReplayCache(size int) *ReplayCache {
	if size <= 0 {
		size = DefaultReplayCacheSize
	}
	return &ReplayCache{size: size, seen: make(map[replayKey]int64), order: make([]replayEntry, size)}
}

// Check records sig (a verified signature, at least 16 bytes) as used until expires and
// reports true, or reports false when sig was recorded before and has not expired at now.
func (c *ReplayCache) Check(sig []byte, expires, now time.Time) bool {
	var k replayKey
	copy(k[:], sig)
	at, exp := now.UnixNano(), expires.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(at)
	if old, ok := c.seen[k]; ok && at < old {
		return false
	}
	if c.n == c.size {
		c.popLocked()
		c.evictions.Add(1)
	}
	c.order[(c.head+c.n)%c.size] = replayEntry{key: k, expires: exp}
	c.n++
	c.seen[k] = exp
	return true
}

// expireLocked drops expired signatures from the head of the ring. Dates arrive roughly in
// order, so an expired entry behind a live one waits its turn; the size bounds it anyway.
func (c *ReplayCache) expireLocked(now int64) {
	for c.n > 0 && now >= c.order[c.head].expires {
		c.popLocked()
	}
}

func (c *ReplayCache) popLocked() {
	e := c.order[c.head]
	// A key recorded again after it expired has a newer entry further on: keep that one.
	if exp, ok := c.seen[e.key]; ok && exp == e.expires {
		delete(c.seen, e.key)
	}
	c.order[c.head] = replayEntry{}
	c.head = (c.head + 1) % c.size
	c.n--
}

// Len is the number of signatures remembered.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Evictions is how many unexpired signatures were dropped because the cache was full.
func (c *ReplayCache) Evictions() int64 { return c.evictions.Load() }
