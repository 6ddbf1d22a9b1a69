// Command lbbench measures lbclient: Pick throughput and latency over gRPC, and how long
// a loader's load change takes to reach lbclient's view. It runs an in-process polaris
// (with its embedded NATS) and lbclient, registers synthetic loaders through polaris'
// gRPC registry and heartbeats them every second, as loaders do.
//
//	go run ./tools/cmd/lbbench -loaders 1000 -services 50 -duration 10s
//	go run ./tools/cmd/lbbench -json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/buildinfo"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/lbpick"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/lbclient"
	"github.com/athenaserving/asf/services/polaris"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// probes is how many loaders the propagation probe heartbeats itself (the background
// heartbeater leaves them alone).
const probes = 10

// Targets.
const (
	targetPicksPerSec  = 50000
	targetPropagateP99 = 100 * time.Millisecond
)

// Result is the -json output.
type Result struct {
	Loaders        int     `json:"loaders"`
	Services       int     `json:"services"`
	Workers        int     `json:"workers"`
	DurationSec    float64 `json:"duration_s"`
	Picks          int64   `json:"picks"`
	Errors         int64   `json:"errors"`
	PicksPerSec    float64 `json:"picks_per_s"`
	PickP50Us      float64 `json:"pick_p50_us"`
	PickP99Us      float64 `json:"pick_p99_us"`
	PropSamples    int     `json:"propagation_samples"`
	PropP50Ms      float64 `json:"propagation_p50_ms"`
	PropP99Ms      float64 `json:"propagation_p99_ms"`
	TargetPicksSec int     `json:"target_picks_per_s"`
	TargetPropP99  float64 `json:"target_propagation_p99_ms"`
	Streams        int     `json:"streams"`
	Pass           bool    `json:"pass"`
}

func main() {
	if buildinfo.PrintIfAsked(os.Stdout, "lbbench", os.Args[1:]) {
		return
	}
	loaders := flag.Int("loaders", 1000, "synthetic loaders")
	services := flag.Int("services", 50, "services the loaders are spread over")
	duration := flag.Duration("duration", 10*time.Second, "pick phase length")
	workers := flag.Int("workers", 64, "concurrent Pick callers")
	connsN := flag.Int("conns", 4, "gRPC connections the callers share")
	streams := flag.Int("streams", 2, "Lb.PickStream streams per connection, as atom keeps them (0: unary Lb.Pick calls)")
	asJSON := flag.Bool("json", false, "print JSON instead of a markdown table")
	flag.Parse()
	if err := run(*loaders, *services, *duration, *workers, *connsN, *streams, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "lbbench:", err)
		os.Exit(1)
	}
}

func run(nLoaders, nServices int, duration time.Duration, workers, nConns, streams int, asJSON bool) error {
	if nLoaders < probes || nServices < 1 || workers < 1 || nConns < 1 {
		return fmt.Errorf("need at least %d loaders, 1 service, 1 worker, 1 connection", probes)
	}
	ctx := context.Background()
	pcfg := polaris.DefaultConfig()
	pcfg.GRPCListen, pcfg.AdminListen, pcfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	pcfg.ConsoleListen, pcfg.Backend = "127.0.0.1:0", polaris.BackendMemory
	pcfg.TLS.Insecure = true // one process on 127.0.0.1: NATS without credentials
	dir, err := os.MkdirTemp("", "lbbench-polaris-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pcfg.DataDir = dir
	pcfg.TTL = 5 * time.Second
	pol, err := polaris.New(pcfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		return err
	}
	if err := pol.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = pol.Shutdown(context.Background()) }()

	lcfg := lbclient.DefaultConfig()
	lcfg.GRPCListen, lcfg.AdminListen, lcfg.PolarisAddr = "127.0.0.1:0", "127.0.0.1:0", pol.GRPCAddr()
	lcfg.TLS.Insecure = true
	lb, err := lbclient.New(lcfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		return err
	}
	if err := lb.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = lb.Shutdown(context.Background()) }()

	pc, err := grpcx.Dial(pol.GRPCAddr())
	if err != nil {
		return err
	}
	defer pc.Close()
	reg := polarispb.NewRegistryClient(pc)
	type synth struct{ svc, addr string }
	all := make([]synth, nLoaders)
	full := &polarispb.Load{Total: 100, Best: 100, Idle: 100, Live: 1}
	for i := range all {
		all[i] = synth{svc: fmt.Sprintf("svc%03d", i%nServices), addr: fmt.Sprintf("10.%d.%d.%d:5090", i/65536, (i/256)%256, i%256)}
		if _, err := reg.Register(ctx, &polarispb.RegisterRequest{Instance: &polarispb.Instance{Service: all[i].svc, Addr: all[i].addr, Kind: "provider"}, Load: full}); err != nil {
			return fmt.Errorf("register: %w", err)
		}
	}
	// Background heartbeats: every loader but the probes, once a second.
	hbCtx, hbStop := context.WithCancel(ctx)
	var hbWG sync.WaitGroup
	hbWG.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
			}
			for _, s := range all[probes:] {
				_, _ = reg.Heartbeat(hbCtx, &polarispb.HeartbeatRequest{Service: s.svc, Addr: s.addr, Load: full})
			}
		}
	})
	defer func() { hbStop(); hbWG.Wait() }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		live := 0
		for i := range nServices {
			live += lb.Live(fmt.Sprintf("svc%03d", i))
		}
		if live == nLoaders {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lbclient sees %d of %d loaders", live, nLoaders)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}

	conns := make([]*grpc.ClientConn, nConns)
	pickers := make([]*lbpick.Client, nConns)
	for i := range conns {
		if conns[i], err = grpcx.Dial(lb.GRPCAddr()); err != nil {
			return err
		}
		defer conns[i].Close()
		pickers[i] = lbpick.New(conns[i], lbpick.Options{Streams: streams})
		defer pickers[i].Close()
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		n := 0
		for _, p := range pickers {
			n += p.Open()
		}
		if n == streams*nConns {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d pick streams open", n, streams*nConns)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	var picks, errs atomic.Int64
	lat := make([][]time.Duration, workers)
	pickCtx, pickStop := context.WithTimeout(ctx, duration)
	defer pickStop()
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			c := pickers[w%nConns]
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for pickCtx.Err() == nil {
				svc := fmt.Sprintf("svc%03d", rng.IntN(nServices))
				t0 := time.Now()
				_, err := c.Pick(context.Background(), svc, 3, nil, "")
				if err != nil {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
				picks.Add(1)
			}
		})
	}
	// Propagation probe, during the pick load: change a probe loader's idle through
	// polaris and time until lbclient's view holds the new value.
	var prop []time.Duration
	wg.Go(func() {
		for i := 0; pickCtx.Err() == nil; i++ {
			s := all[i%probes]
			idle := int32(i % 100)
			t0 := time.Now()
			if _, err := reg.Heartbeat(ctx, &polarispb.HeartbeatRequest{Service: s.svc, Addr: s.addr,
				Load: &polarispb.Load{Total: 100, Best: 100, Idle: idle, Live: 1}}); err != nil {
				continue
			}
			for {
				if l, _, ok := lb.View().LoaderLoad(s.svc, s.addr); ok && l.Idle == idle {
					prop = append(prop, time.Since(t0))
					break
				}
				if time.Since(t0) > 2*time.Second {
					prop = append(prop, time.Since(t0))
					break
				}
				time.Sleep(100 * time.Microsecond) // polling interval of the probe
			}
			time.Sleep(20 * time.Millisecond) // probe pacing
		}
	})
	wg.Wait()
	elapsed := time.Since(start)

	var merged []time.Duration
	for _, l := range lat {
		merged = append(merged, l...)
	}
	res := Result{
		Loaders: nLoaders, Services: nServices, Workers: workers, DurationSec: elapsed.Seconds(),
		Picks: picks.Load(), Errors: errs.Load(), PicksPerSec: float64(picks.Load()) / elapsed.Seconds(),
		PickP50Us: us(pct(merged, 0.50)), PickP99Us: us(pct(merged, 0.99)),
		PropSamples: len(prop), PropP50Ms: ms(pct(prop, 0.50)), PropP99Ms: ms(pct(prop, 0.99)),
		TargetPicksSec: targetPicksPerSec, TargetPropP99: ms(targetPropagateP99), Streams: streams,
	}
	res.Pass = res.PicksPerSec >= targetPicksPerSec && pct(prop, 0.99) <= targetPropagateP99 && res.Errors == 0
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	ok := func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	}
	fmt.Printf("lbclient: %d loaders across %d services, %d callers over %d gRPC connections, %s\n\n",
		nLoaders, nServices, workers, nConns, elapsed.Round(time.Millisecond))
	fmt.Println("| metric | target | measured | met |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| Pick throughput | ≥ %d /s | %.0f /s | %s |\n", targetPicksPerSec, res.PicksPerSec, ok(res.PicksPerSec >= targetPicksPerSec))
	fmt.Printf("| Pick latency p50 / p99 | — | %.0f µs / %.0f µs | — |\n", res.PickP50Us, res.PickP99Us)
	fmt.Printf("| Pick errors | 0 | %d | %s |\n", res.Errors, ok(res.Errors == 0))
	fmt.Printf("| Load propagation p50 | — | %.2f ms | — |\n", res.PropP50Ms)
	fmt.Printf("| Load propagation p99 (%d samples) | ≤ %.0f ms | %.2f ms | %s |\n", res.PropSamples, res.TargetPropP99, res.PropP99Ms, ok(pct(prop, 0.99) <= targetPropagateP99))
	return nil
}

// pct returns the q-quantile of d (0 when empty).
func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
