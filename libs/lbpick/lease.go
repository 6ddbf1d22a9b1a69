package lbpick

import (
	"context"
	"math"
	"sync"
	"time"

	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Leases: a Client with Options.LeaseMax > 0 asks lbclient (Lb.Lease) for picks of a
// busy service in advance, in the background, and answers the key-free part of its
// picks — those without exclude — from them while they are valid. lbclient charges a
// leased pick when it grants it, exactly as a Pick at that moment, and says how long it
// may be used (well inside its pick-lease); a leased pick is used once, never after that,
// and an unused one only holds room until lbclient would have released it anyway
// (docs/load-balancing.md "Leases").

// Lease tuning. A lease is sized for the service's picks over leaseWindow (or half the
// validity lbclient grants, when shorter), from a pick rate smoothed over rateTau; a
// rate that fills fewer than minLease picks takes no lease: each pick asks lbclient, as
// without leases.
const (
	defaultLeaseWindow = 10 * time.Millisecond
	rateTick           = 5 * time.Millisecond
	rateTau            = 50 * time.Millisecond
	minLease           = 2
	// leaseTimeout bounds one Lease call; meanwhile picks go to lbclient one by one.
	leaseTimeout = time.Second
	// leaseBackoff is the pause in leasing a service after a Lease failed or granted
	// nothing (no room left, no loader): picks ask lbclient one by one meanwhile.
	leaseBackoff = 50 * time.Millisecond
)

// grant is one answered Lease: its picks in order, next the first one not used yet.
type grant struct {
	addrs []string
	per   int
	picks []uint32
	next  int
	until time.Time // monotonic: the picks are not used from then on
}

func (g *grant) left() int { return len(g.picks)/g.per - g.next }

// take returns the next pick and marks it used.
func (g *grant) take() []string {
	out := make([]string, g.per)
	for j, k := range g.picks[g.next*g.per : (g.next+1)*g.per] {
		out[j] = g.addrs[k]
	}
	g.next++
	return out
}

// leases is one service's leased picks and pick rate. mu guards every field.
type leases struct {
	mu        sync.Mutex
	n         int     // candidates per pick the grants hold
	grants    []grant // oldest first
	refilling bool    // a Lease call is out
	pauseTill time.Time
	valid     time.Duration // the validity of the last grant (0: none yet)
	rate      float64       // picks per second, smoothed
	count     int           // picks since since
	since     time.Time
}

// observe counts a pick at now in the smoothed rate.
func (ls *leases) observe(now time.Time) {
	if ls.since.IsZero() {
		ls.since = now // the rate counts the picks after this one
		return
	}
	ls.count++
	el := now.Sub(ls.since)
	if el < rateTick {
		return
	}
	alpha := 1 - math.Exp(-float64(el)/float64(rateTau))
	ls.rate += alpha * (float64(ls.count)/el.Seconds() - ls.rate)
	ls.count, ls.since = 0, now
}

// takeLocked returns the next valid pick with n candidates, dropping spent and expired
// grants; nil when there is none.
func (ls *leases) takeLocked(n int, now time.Time) []string {
	if ls.n != n {
		return nil
	}
	for len(ls.grants) > 0 {
		g := &ls.grants[0]
		if g.left() > 0 && now.Before(g.until) {
			return g.take()
		}
		ls.grants[0] = grant{}
		ls.grants = ls.grants[1:]
	}
	return nil
}

// refillLocked says how many picks to lease now: 0 while a Lease is out or paused,
// while the pick rate is too low for a lease, or while the grants held still cover half
// a window's picks for at least half a window.
func (ls *leases) refillLocked(now time.Time, window time.Duration, most int) int {
	if ls.refilling || now.Before(ls.pauseTill) {
		return 0
	}
	if ls.valid > 0 {
		window = min(window, ls.valid/2)
	}
	want := min(int(math.Ceil(ls.rate*window.Seconds())), most)
	if want < minLease {
		return 0
	}
	usable := 0
	for i := range ls.grants {
		if ls.grants[i].until.Sub(now) > window/2 {
			usable += ls.grants[i].left()
		}
	}
	if usable > want/2 {
		return 0
	}
	ls.refilling = true
	return want
}

// leased answers a pick from the service's leases when it can, and starts a refill in
// the background when they run low. ok is false when the pick must ask lbclient.
func (c *Client) leased(service string, n int) (addrs []string, ok bool) {
	now := c.opts.now()
	v, found := c.leases.Load(service)
	if !found {
		v, _ = c.leases.LoadOrStore(service, &leases{n: n})
	}
	ls := v.(*leases)
	ls.mu.Lock()
	ls.observe(now)
	addrs = ls.takeLocked(n, now)
	count := 0
	if ls.n == n {
		count = ls.refillLocked(now, c.opts.LeaseWindow, c.opts.LeaseMax)
	}
	ls.mu.Unlock()
	if count > 0 && !c.spawn(func() { c.refill(service, ls, count) }) {
		ls.mu.Lock()
		ls.refilling = false
		ls.mu.Unlock()
	}
	return addrs, addrs != nil
}

// refill asks lbclient for count picks of service and keeps what it grants. The grant's
// validity counts from before the call, so it ends no later than lbclient meant.
func (c *Client) refill(service string, ls *leases, count int) {
	ls.mu.Lock()
	n := ls.n
	ls.mu.Unlock()
	sent := c.opts.now()
	ctx, cancel := context.WithTimeout(c.ctx, leaseTimeout)
	resp, err := c.lease(ctx, &lbpb.LeaseRequest{Service: service, N: int32(n), Count: int32(count)})
	cancel()
	now := c.opts.now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.refilling = false
	per, ok := validLease(resp)
	switch {
	case status.Code(err) == codes.Unimplemented || resp.GetRefused():
		// An lbclient without leases, or a service whose picks use their key: per
		// request, asking again now and then (the next replica may differ).
		ls.pauseTill = now.Add(c.opts.UnimplementedRetry)
		ev := c.log.Debug()
		if c.warnedNoLease.CompareAndSwap(false, true) {
			ev = c.log.Info()
		}
		ev.Err(err).Str("service", service).Dur("retry_in", c.opts.UnimplementedRetry).Msg("lbclient grants no lease: picking per request")
	case err != nil || len(resp.GetPicks()) == 0:
		// Failed, or no room left to lease: picks ask lbclient one by one for a while.
		ls.pauseTill = now.Add(leaseBackoff)
		c.log.Debug().Err(err).Str("service", service).Msg("lease granted nothing")
	case !ok:
		ls.pauseTill = now.Add(leaseBackoff)
		c.log.Warn().Str("service", service).Msg("malformed lease ignored")
	default:
		ls.valid = time.Duration(resp.GetValidUs()) * time.Microsecond
		ls.grants = append(ls.grants, grant{addrs: resp.GetAddrs(), per: per, picks: resp.GetPicks(), until: sent.Add(ls.valid)})
	}
}

// errNoLease stands for an lbclient whose PickStream predates leases.
var errNoLease = status.Error(codes.Unimplemented, "lbclient answered a lease as a pick")

// lease asks for a lease over a PickStream (a message each way, like a pick), or over
// the unary Lb.Lease while no stream is open.
func (c *Client) lease(ctx context.Context, req *lbpb.LeaseRequest) (*lbpb.LeaseResponse, error) {
	r, ok := c.onStream(ctx, &lbpb.PickStreamRequest{Lease: req})
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case !ok:
		return c.c.Lease(ctx, req)
	case r.lease == nil:
		return nil, errNoLease
	case r.err != nil:
		return nil, r.err
	}
	return r.lease, nil
}

// validLease checks that a lease answer holds at least one whole pick, every index
// naming an address, and a validity; per is its candidates per pick.
func validLease(resp *lbpb.LeaseResponse) (per int, ok bool) {
	per = int(resp.GetPer())
	if per <= 0 || len(resp.GetPicks()) < per || len(resp.GetPicks())%per != 0 || resp.GetValidUs() <= 0 {
		return 0, false
	}
	for _, k := range resp.GetPicks() {
		if int(k) >= len(resp.GetAddrs()) {
			return 0, false
		}
	}
	return per, true
}

// spawn runs f on a goroutine the client owns (Close waits for it); false once the
// client is closing.
func (c *Client) spawn(f func()) bool {
	c.smu.Lock()
	defer c.smu.Unlock()
	if c.closing {
		return false
	}
	c.wg.Go(f)
	return true
}

// leftFor is how many valid leased picks the client holds for service at now (tests).
func (c *Client) leftFor(service string) int {
	v, ok := c.leases.Load(service)
	if !ok {
		return 0
	}
	ls := v.(*leases)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	now, left := c.opts.now(), 0
	for i := range ls.grants {
		if now.Before(ls.grants[i].until) {
			left += ls.grants[i].left()
		}
	}
	return left
}
