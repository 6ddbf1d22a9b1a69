package lbclient_test

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/lbpick"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/lbclient"
	"github.com/stretchr/testify/require"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// askedPicks is how many picks of echo lbclient answered one by one (not leased).
func askedPicks(srv *lbclient.Server) uint64 {
	for _, st := range srv.View().Stats(time.Now()) {
		if st.Service == "echo" {
			return st.Picks - st.Leased
		}
	}
	return 0
}

// BenchmarkLeasedPicks measures picks through lbpick over a real lbclient on loopback,
// with leases off (every pick a PickStream message each way, as before) and on (atom's
// default lb-lease-max, 64), one caller (c=1: ns/op is a pick's latency) and 64. Both
// sides run in this process, so cpu-ns/pick is the CPU of lbpick and lbclient together.
// Compare the two in one run, interleaved: -bench LeasedPicks -count 6.
func BenchmarkLeasedPicks(b *testing.B) {
	big := func(addr string) *polarispb.InstanceState {
		s := state("echo", addr, 1, 1, 1)
		s.Load.Total, s.Load.Best, s.Load.Idle = 1<<20, 1<<20, 1<<20 // room for every pick
		return s
	}
	// No load reports come: the loaders stay in rotation for the whole run.
	srv, _ := startConfigured(b, func(c *lbclient.Config) { c.ReportInterval, c.StaleAfter = time.Hour, time.Hour },
		big("10.0.0.1:5090"), big("10.0.0.2:5090"))
	for _, callers := range []int{1, 64} {
		for _, leases := range []int{0, 64} {
			name := "c=1"
			if callers > 1 {
				name = "c=64"
			}
			name += "/leases=off"
			if leases > 0 {
				name = name[:len(name)-3] + "on"
			}
			b.Run(name, func(b *testing.B) {
				cc, err := grpcx.Dial(srv.GRPCAddr())
				require.NoError(b, err)
				defer func() { _ = cc.Close() }()
				c := lbpick.New(cc, lbpick.Options{Streams: 6, LeaseMax: leases})
				defer func() { _ = c.Close() }()
				testpoll.Until(b, 5*time.Second, "pick streams open", func() bool { return c.Open() == 6 })
				// Warm up: the pick rate is learnt and the first lease taken.
				for range 2000 {
					if _, err := c.Pick(b.Context(), "echo", 3, nil, ""); err != nil {
						b.Fatal(err)
					}
				}
				b.SetParallelism(max(callers/runtime.GOMAXPROCS(0), 1))
				asked0 := askedPicks(srv)
				cpu0, wall0 := cpuTime(b), time.Now()
				b.ResetTimer()
				if callers == 1 {
					for range b.N {
						if _, err := c.Pick(b.Context(), "echo", 3, nil, ""); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := c.Pick(b.Context(), "echo", 3, nil, ""); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.StopTimer()
				cpu, wall := cpuTime(b)-cpu0, time.Since(wall0)
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/pick")
				b.ReportMetric(float64(b.N)/wall.Seconds(), "picks/s")
				// The share of picks that still asked lbclient (a miss: no lease left).
				b.ReportMetric(float64(askedPicks(srv)-asked0)/float64(b.N), "asked/pick")
			})
		}
	}
}
