package lbpick

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/rs/zerolog"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// leasingLB grants every lease in full: pick i of the whole run is "<service>#<i>"
// followed by n-1 fallbacks, so every leased pick is told apart. Service "tts" is
// refused (a consistent-hash service), "none" fails with 10223. during, when set, runs
// while a Lease is answered; once, when set, makes every lease after the first refused.
type leasingLB struct {
	*fakeLB
	valid  time.Duration
	during func()
	once   bool

	mu      sync.Mutex
	asked   []int32  // count of every Lease, in order
	of      []string // service of every Lease, in order
	granted atomic.Int64
	// unaryLeases counts the leases asked over Lb.Lease rather than a PickStream.
	unaryLeases atomic.Int64
}

func (f *leasingLB) Lease(_ context.Context, req *lbpb.LeaseRequest) (*lbpb.LeaseResponse, error) {
	f.unaryLeases.Add(1)
	resp, err := f.lease(req)
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return resp, nil
}

func (f *leasingLB) lease(req *lbpb.LeaseRequest) (*lbpb.LeaseResponse, error) {
	f.mu.Lock()
	f.asked = append(f.asked, req.GetCount())
	f.of = append(f.of, req.GetService())
	first := len(f.asked) == 1
	f.mu.Unlock()
	if f.during != nil {
		f.during()
	}
	switch {
	case req.GetService() == "tts", f.once && !first:
		return &lbpb.LeaseResponse{Refused: true}, nil
	case req.GetService() == "none":
		return nil, aserr.New(aserr.ErrNoEngine.Code, "no live loader of none")
	}
	n := max(int(req.GetN()), 1)
	resp := &lbpb.LeaseResponse{Per: int32(n), ValidUs: f.valid.Microseconds()}
	for range req.GetCount() {
		i := f.granted.Add(1)
		for j := range n {
			resp.Picks = append(resp.Picks, uint32(len(resp.Addrs)))
			resp.Addrs = append(resp.Addrs, fmt.Sprintf("%s#%d/%d", req.GetService(), i, j))
		}
	}
	return resp, nil
}

func (f *leasingLB) leases() []int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int32(nil), f.asked...)
}

// leasesOf is how many leases were asked for service.
func (f *leasingLB) leasesOf(service string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.of {
		if s == service {
			n++
		}
	}
	return n
}

// streamingLeasingLB is leasingLB with PickStream, leases included.
type streamingLeasingLB struct{ *leasingLB }

func (f streamingLeasingLB) PickStream(st lbpb.Lb_PickStreamServer) error {
	return f.serveStream(st, f.lease)
}

// leaseClient opens a Client with leases on a fake clock to srv, over unary calls only
// or, with streams, over that many PickStreams once they are open.
func leaseClient(t *testing.T, srv lbpb.LbServer, clk *fakeClock, leaseMax, streams int) *Client {
	t.Helper()
	addr, _ := serve(t, nil, srv)
	opts := Options{Streams: streams, LeaseMax: leaseMax, UnimplementedRetry: time.Minute, Log: zerolog.New(zerolog.NewTestWriter(t)), now: clk.Now}
	c := New(dial(t, addr), opts)
	t.Cleanup(func() { _ = c.Close() })
	testpoll.Until(t, 10*time.Second, "streams open", func() bool { return c.Open() == streams })
	return c
}

func isLeased(addrs []string) bool { return len(addrs) > 0 && strings.Contains(addrs[0], "#") }

// settle waits until no Lease call of service is out, as if lbclient answered at once.
func settle(t *testing.T, c *Client, service string) {
	t.Helper()
	testpoll.Until(t, 10*time.Second, "no lease call out", func() bool {
		v, ok := c.leases.Load(service)
		if !ok {
			return true
		}
		ls := v.(*leases)
		ls.mu.Lock()
		defer ls.mu.Unlock()
		return !ls.refilling
	})
}

// paused tells whether leasing service is paused at now (refused, failed, none).
func paused(c *Client, service string, now time.Time) bool {
	v, _ := c.leases.Load(service)
	ls := v.(*leases)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.pauseTill.After(now)
}

// pickAt picks service with 3 candidates every step of the fake clock, picks times or
// until done holds, each pick's lease call (if any) answered before the next.
func pickAt(t *testing.T, c *Client, clk *fakeClock, service string, step time.Duration, picks int, done func() bool) {
	t.Helper()
	for range picks {
		clk.Add(step)
		if _, err := c.Pick(t.Context(), service, 3, nil, "k"); err != nil {
			t.Fatalf("pick: %v", err)
		}
		settle(t, c, service)
		if done != nil && done() {
			return
		}
	}
}

func TestLeasedPicksEndAtTheirValidity(t *testing.T) {
	clk := newFakeClock()
	// The Lease call takes 5 ms of the 20 ms validity: what is left is 15 ms. Later
	// leases are refused, so the first one is watched alone.
	f := &leasingLB{fakeLB: &fakeLB{}, valid: 20 * time.Millisecond, once: true, during: func() { clk.Add(5 * time.Millisecond) }}
	c := leaseClient(t, f, clk, 64, 0)
	// 10k picks/s: the first picks ask lbclient, and once the rate is known a lease is
	// taken in the background.
	pickAt(t, c, clk, "echo", 100*time.Microsecond, 1000, func() bool { return c.leftFor("echo") > 0 })
	if got := f.leases(); len(got) != 1 || int64(got[0]) != f.granted.Load() || got[0] < 2 {
		t.Fatalf("leases asked %v, %d granted", got, f.granted.Load())
	}
	unary := f.unary.Load()
	addrs, err := c.Pick(t.Context(), "echo", 3, nil, "k")
	if err != nil || !isLeased(addrs) || len(addrs) != 3 {
		t.Fatalf("pick with a lease held: %v %v", addrs, err)
	}
	if f.unary.Load() != unary {
		t.Fatal("a leased pick asked lbclient")
	}
	// Just inside the validity left (15 ms from receipt), the lease still answers;
	// from its end on, never, however many picks it has left.
	clk.Add(15*time.Millisecond - time.Microsecond)
	if addrs, _ := c.Pick(t.Context(), "echo", 3, nil, "k"); !isLeased(addrs) {
		t.Fatalf("pick inside the validity: %v", addrs)
	}
	settle(t, c, "echo")
	clk.Add(time.Microsecond)
	if left := c.leftFor("echo"); left != 0 {
		t.Fatalf("%d picks still valid at the end of the validity", left)
	}
	if addrs, err := c.Pick(t.Context(), "echo", 3, nil, "k"); err != nil || isLeased(addrs) {
		t.Fatalf("pick at the end of the validity: %v %v", addrs, err)
	}
}

func TestLeasesNeverServeExcludeOrKeyedServices(t *testing.T) {
	clk := newFakeClock()
	f := &leasingLB{fakeLB: &fakeLB{}, valid: time.Second}
	c := leaseClient(t, f, clk, 64, 0)
	pickAt(t, c, clk, "echo", 100*time.Microsecond, 1000, func() bool { return c.leftFor("echo") > 0 })
	left := c.leftFor("echo")
	// A retry (exclude) asks lbclient and leaves the lease alone.
	addrs, err := c.Pick(t.Context(), "echo", 3, []string{"echo#1/0"}, "k")
	if err != nil || isLeased(addrs) || c.leftFor("echo") != left {
		t.Fatalf("pick with exclude: %v %v (%d left of %d)", addrs, err, c.leftFor("echo"), left)
	}
	// A pick for another candidate count is not answered from it either.
	if addrs, _ := c.Pick(t.Context(), "echo", 1, nil, "k"); isLeased(addrs) {
		t.Fatalf("pick of 1 from a lease of 3: %v", addrs)
	}

	// lbclient refuses to lease a consistent-hash service: its picks, key and all, go to
	// lbclient one by one, and leasing is not asked again for UnimplementedRetry.
	unary := f.unary.Load()
	pickAt(t, c, clk, "tts", 100*time.Microsecond, 200, nil)
	if f.unary.Load() != unary+200 {
		t.Fatalf("tts picks asked lbclient %d times, want 200", f.unary.Load()-unary)
	}
	if n := f.leasesOf("tts"); n != 1 || !paused(c, "tts", clk.Now()) {
		t.Fatalf("%d leases asked for tts", n)
	}
}

func TestLeaseSizeFollowsThePickRate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		step     time.Duration
		min, max int32 // the size of the leases asked, once the rate settled; 0: none
	}{
		{"quiet: no lease", 20 * time.Millisecond, 0, 0}, // 50/s: one pick per 20 ms
		{"1k/s", time.Millisecond, 9, 11},                // 10 ms of picks
		{"4k/s", 250 * time.Microsecond, 38, 42},
		{"capped", 20 * time.Microsecond, 64, 64}, // 50k/s, LeaseMax 64
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			f := &leasingLB{fakeLB: &fakeLB{}, valid: 20 * time.Millisecond}
			c := leaseClient(t, f, clk, 64, 0)
			// 250 ms of picks: the rate settles (its smoothing time is 50 ms).
			pickAt(t, c, clk, "echo", tc.step, int(250*time.Millisecond/tc.step), nil)
			asked := f.leases()
			if tc.max == 0 {
				if len(asked) != 0 {
					t.Fatalf("leases asked at 50 picks/s: %v", asked)
				}
				return
			}
			if len(asked) < 3 {
				t.Fatalf("leases asked %v", asked)
			}
			if last := asked[len(asked)-1]; last < tc.min || last > tc.max {
				t.Fatalf("settled lease size %d, want %d..%d (all %v)", last, tc.min, tc.max, asked)
			}
			// Steady picks use the leases: few picks ask lbclient once they run.
			if asks := f.unary.Load(); asks > int64(250*time.Millisecond/tc.step)/4 {
				t.Fatalf("%d of %d picks asked lbclient", asks, 250*time.Millisecond/tc.step)
			}
		})
	}
}

func TestConcurrentCallersUseEachLeasedPickOnce(t *testing.T) {
	f := &leasingLB{fakeLB: &fakeLB{}, valid: 20 * time.Millisecond}
	addr, _ := serve(t, nil, streamingLeasingLB{f})
	c := New(dial(t, addr), Options{Streams: 2, LeaseMax: 32, Log: zerolog.New(zerolog.NewTestWriter(t))})
	t.Cleanup(func() { _ = c.Close() })
	testpoll.Until(t, 10*time.Second, "2 streams open", func() bool { return c.Open() == 2 })
	var mu sync.Mutex
	seen := map[string]bool{}
	var leased, asked atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				addrs, err := c.Pick(t.Context(), "echo", 2, nil, fmt.Sprint(g))
				if err != nil {
					t.Errorf("pick %d/%d: %v", g, i, err)
					return
				}
				if !isLeased(addrs) {
					asked.Add(1)
					continue
				}
				leased.Add(1)
				mu.Lock()
				if seen[addrs[0]] {
					t.Errorf("leased pick %s answered twice", addrs[0])
				}
				seen[addrs[0]] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d picks from leases, %d asked lbclient, %d leased picks granted in %d leases", leased.Load(), asked.Load(), f.granted.Load(), len(f.leases()))
	if leased.Load() == 0 {
		t.Fatal("no pick was answered from a lease")
	}
	if leased.Load() > f.granted.Load() {
		t.Fatalf("%d leased picks used, %d granted", leased.Load(), f.granted.Load())
	}
	if n := f.unaryLeases.Load(); n != 0 {
		t.Fatalf("%d leases over unary calls while the streams were open", n)
	}
}

func TestNoLeasesFromAnLbclientWithout(t *testing.T) {
	// Without streams the lease goes over unary Lb.Lease (Unimplemented); with streams
	// it goes on a PickStream, answered as a pick by an lbclient from before leases.
	for _, streams := range []int{0, 2} {
		t.Run(fmt.Sprint("streams=", streams), func(t *testing.T) {
			clk := newFakeClock()
			f := &fakeLB{}
			c := leaseClient(t, streamingLB{f}, clk, 64, streams) // PickStream, no Lease
			pickAt(t, c, clk, "echo", 100*time.Microsecond, 1000, func() bool { return paused(c, "echo", clk.Now()) })
			if !paused(c, "echo", clk.Now()) {
				t.Fatal("leases not paused after the lease was not understood")
			}
			before := f.unary.Load() + f.streamed.Load()
			for range 100 {
				clk.Add(100 * time.Microsecond)
				addrs, err := c.Pick(t.Context(), "echo", 3, nil, "k")
				if err != nil || addrs[0] != "echo:k" {
					t.Fatalf("pick: %v %v", addrs, err)
				}
			}
			if got := f.unary.Load() + f.streamed.Load() - before; got != 100 {
				t.Fatalf("%d of 100 picks asked lbclient", got)
			}
		})
	}
}

func TestLeaseErrorsFallBackToPicks(t *testing.T) {
	clk := newFakeClock()
	f := &leasingLB{fakeLB: &fakeLB{}, valid: 20 * time.Millisecond}
	c := leaseClient(t, f, clk, 64, 0)
	for range 100 {
		clk.Add(100 * time.Microsecond)
		if _, err := c.Pick(t.Context(), "none", 3, nil, ""); aserr.CodeOf(err) != aserr.ErrNoEngine.Code {
			t.Fatalf("pick of none: %v", err)
		}
	}
	// A failed lease pauses leasing for a while: not one Lease per pick.
	if n := len(f.leases()); n > 2 {
		t.Fatalf("%d leases asked in 10 ms of failing picks", n)
	}
}

// FuzzGrant checks that a lease answer is either refused or yields only picks whose
// addresses it holds, however it is formed.
func FuzzGrant(f *testing.F) {
	f.Add(uint8(3), int32(3), []byte{0, 1, 2, 2, 1, 0})
	f.Add(uint8(1), int32(2), []byte{0, 1})
	f.Add(uint8(0), int32(0), []byte{})
	f.Add(uint8(2), int32(-1), []byte{5})
	f.Fuzz(func(t *testing.T, naddrs uint8, per int32, idx []byte) {
		resp := &lbpb.LeaseResponse{Per: per, ValidUs: 1}
		for i := range naddrs {
			resp.Addrs = append(resp.Addrs, fmt.Sprint("a", i))
		}
		for _, b := range idx {
			resp.Picks = append(resp.Picks, uint32(b))
		}
		p, ok := validLease(resp)
		if !ok {
			return
		}
		g := grant{addrs: resp.GetAddrs(), per: p, picks: resp.GetPicks()}
		if g.left() < 1 {
			t.Fatalf("a valid lease of no pick: %v", resp)
		}
		for g.left() > 0 {
			for _, a := range g.take() {
				if !strings.HasPrefix(a, "a") {
					t.Fatalf("address %q", a)
				}
			}
		}
	})
}
