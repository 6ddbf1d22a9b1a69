package source

import "time"

// cutoff decides when the source is cut off from the registry's truth. It is owned by
// the Run goroutine and takes the time explicitly.
//
// The source is cut off when the latest polaris call failed and no event can be
// flowing: the NATS connection is down, or no registry or load event (nor a snapshot)
// arrived for longer than quiet. While NATS is up but quiet, and while NATS is down,
// the source probes polaris (Registry.List) so a working registry with few loaders is
// not mistaken for a dead one; a successful probe counts as an event.
type cutoff struct {
	quiet time.Duration // silence after which polaris is probed
	// retryMin and retryMax space probes after failures.
	retryMin, retryMax time.Duration
	// pollEvery spaces successful probes while NATS is down.
	pollEvery time.Duration

	lastEvent time.Time
	polarisOK bool
	nextProbe time.Time
	failures  int
}

func newCutoff(quiet, retryMin, retryMax, pollEvery time.Duration, now time.Time) *cutoff {
	return &cutoff{quiet: quiet, retryMin: retryMin, retryMax: retryMax, pollEvery: pollEvery,
		lastEvent: now, polarisOK: true}
}

// event records a registry or load event received at now.
func (c *cutoff) event(now time.Time) {
	if now.After(c.lastEvent) {
		c.lastEvent = now
	}
}

// polaris records the result of a polaris call made at now; a success applied a
// snapshot, which counts as an event.
func (c *cutoff) polaris(ok bool, now time.Time) {
	c.polarisOK = ok
	if ok {
		c.event(now)
		c.failures = 0
		c.nextProbe = now.Add(c.pollEvery)
		return
	}
	d := c.retryMin
	for i := 0; i < c.failures && d < c.retryMax; i++ {
		d *= 2
	}
	c.failures++
	c.nextProbe = now.Add(min(d, c.retryMax))
}

// silent tells whether no event can be flowing at now.
func (c *cutoff) silent(now time.Time, connected bool) bool {
	return !connected || now.Sub(c.lastEvent) > c.quiet
}

// probeDue tells whether polaris should be probed at now.
func (c *cutoff) probeDue(now time.Time, connected bool) bool {
	return c.silent(now, connected) && !now.Before(c.nextProbe)
}

// cut tells whether the source is cut off at now.
func (c *cutoff) cut(now time.Time, connected bool) bool {
	return !c.polarisOK && c.silent(now, connected)
}
