package scenario

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/natsbus"
	"github.com/athenaserving/asf/libs/pki"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/asfbench/baseline"
	"github.com/athenaserving/asf/tools/asfbench/report"
	"github.com/athenaserving/asf/tools/asfbench/targets"
)

// probeService is the service name of the fake instances the propagation probe registers.
const probeService = "bench-probe"

// runControl is scenario 4: lbclient Pick throughput and load-change propagation.
func runControl(ctx context.Context, env *Env, s Suite) (*report.Scenario, error) {
	sc := &report.Scenario{ID: "control", Title: "4. Control plane", XLabel: "concurrency", Baseline: "bare gRPC echo",
		Description: "Raw gRPC `Lb.Pick(echo, n=3)` against lbclient (closed loop, pre-encoded request), against a bare gRPC echo " +
			"of the same request bytes (the floor for one hop)."}
	req, err := proto.Marshal(&lbpb.PickRequest{Service: "echo", N: 3, Key: "bench"})
	if err != nil {
		return sc, err
	}
	for _, c := range env.Profile.PickConcurrency {
		load := asfbench.Load{Concurrency: c}
		if s != nil {
			opt, err := s.DialOption("lbclient")
			if err != nil {
				return sc, err
			}
			t, err := targets.NewGRPCRaw(targets.GRPCConfig{Addr: s.LBAddr(), Method: lbpb.Lb_Pick_FullMethodName, Request: req,
				Check: checkPick, Dial: []grpc.DialOption{opt}})
			if err != nil {
				return sc, err
			}
			row, err := measure(ctx, env, "lbclient Pick", float64(c), t, load, suiteGroups(s).only("lbclient", "asfbench"))
			t.Close()
			if err != nil {
				return sc, err
			}
			row.VS = "bare gRPC echo"
			sc.Rows = append(sc.Rows, row)
		} else {
			sc.Rows = append(sc.Rows, na("lbclient Pick", float64(c), env.suiteWhy()))
		}
		t, err := targets.NewGRPCRaw(targets.GRPCConfig{Addr: env.BaselineGRPC, Method: baseline.EchoMethod, Request: req})
		if err != nil {
			return sc, err
		}
		row, err := measure(ctx, env, "bare gRPC echo", float64(c), t, load, pidGroups("baseline", env.BaselinePIDs))
		t.Close()
		if err != nil {
			return sc, err
		}
		sc.Rows = append(sc.Rows, row)
	}
	env.logf("control: lbbench (%d loaders, %d services, %v)", env.Profile.LBBenchLoaders, env.Profile.LBBenchServices, env.Profile.LBBenchDuration)
	sc.Tables, sc.Targets = lbBench(ctx, env)
	if s == nil {
		sc.Notes = append(sc.Notes, "Load-change propagation not measured: "+env.suiteWhy()+".")
		return sc, nil
	}
	env.logf("control: load-change propagation (%d samples)", env.Profile.PropagationSamples)
	pr, err := measurePropagation(ctx, s, env.Profile.PropagationSamples, env.Profile.PropagationPollInterval)
	if err != nil {
		sc.Notes = append(sc.Notes, fmt.Sprintf("Load-change propagation not measured: %v", err))
		return sc, nil
	}
	sc.Findings = append(sc.Findings, pr.findings()...)
	return sc, nil
}

func (g groups) only(names ...string) groups {
	out := groups{}
	for _, n := range names {
		if v, ok := g[n]; ok {
			out[n] = v
		}
	}
	return out
}

func checkPick(b []byte) error {
	var resp lbpb.PickResponse
	if err := proto.Unmarshal(b, &resp); err != nil {
		return err
	}
	if len(resp.Addrs) == 0 {
		return errors.New("empty pick")
	}
	return nil
}

// propagation holds the delays of the propagation probe.
type propagation struct {
	nats, pick asfbench.Histogram
	pickMissed int
	samples    int
	// registeredAs says how the probe instances were registered with polaris.
	registeredAs string
}

func (p *propagation) findings() []string {
	f := func(h *asfbench.Histogram) string {
		return fmt.Sprintf("p50 %.2f ms, p90 %.2f ms, max %.2f ms", ms(h.Quantile(0.5)), ms(h.Quantile(0.9)), ms(h.Max()))
	}
	out := []string{fmt.Sprintf("Heartbeat → NATS `asf.load.%s` event delivered to a subscriber (%d samples): %s.", probeService, p.nats.Count(), f(&p.nats))}
	if p.pick.Count() > 0 {
		out = append(out, fmt.Sprintf("Heartbeat → lbclient Pick order reflects the new load (%d samples, polled): %s.", p.pick.Count(), f(&p.pick)))
	}
	if p.registeredAs != "" {
		out = append(out, fmt.Sprintf("Probe instances registered with polaris as %s; NATS events read as the lbclient user (subscribe only).", p.registeredAs))
	}
	if p.pickMissed > 0 {
		out = append(out, fmt.Sprintf("Pick order did not change within 2 s in %d of %d samples.", p.pickMissed, p.samples))
	}
	return out
}

// natsOptions are how the propagation probe connects to the suite's NATS: as lbclient,
// whose nkey may only subscribe (to <prefix>.registry.> and <prefix>.load.>, which is all
// the probe does), presenting the tools' certificate when the suite runs internal TLS
// (polaris's embedded server then requires mutual TLS before the nkey is checked).
func natsOptions(s Suite) ([]nats.Option, error) {
	seed := s.NATSSeedFile(natsbus.UserLBClient)
	key, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("nats nkey %s: %w", seed, err)
	}
	b, err := tlsx.Load(s.TLS("asfctl"), zerolog.Nop())
	if err != nil {
		return nil, fmt.Errorf("nats tls: %w", err)
	}
	return append([]nats.Option{nats.Name("asfbench"), key}, natsbus.TLSOption(b)...), nil
}

// probeRegistrar is how the propagation probe registers its made-up instances with
// polaris, which lets an internal caller act only for its own instances: as a loader tier
// (a certificate spiffe://asf/loader/* issued from the suite's CA into dir, which acts for
// any loader instance, so the heartbeats are authorized exactly as a loader's), or, when
// the CA key is not at hand, as asfctl with the polaris admin token. A plaintext suite
// needs neither. how names the way taken, for the report.
func probeRegistrar(s Suite, dir string) (opt grpc.DialOption, md metadata.MD, how string, err error) {
	cfg := s.TLS("asfctl")
	if cfg.Insecure {
		opt, err := s.DialOption("polaris")
		return opt, nil, "plaintext (insecure suite)", err
	}
	ca, caErr := pki.LoadCA(s.PKIDir())
	if caErr == nil {
		id := grpcx.Identity{Service: "loader", Instance: "*"}
		leaf, err := ca.Issue(id)
		if err != nil {
			return nil, nil, "", err
		}
		if err := leaf.Write(dir, "loader"); err != nil {
			return nil, nil, "", err
		}
		b, err := tlsx.Load(tlsx.Config{CA: cfg.CA, Cert: filepath.Join(dir, "loader.crt"), Key: filepath.Join(dir, "loader.key")}, zerolog.Nop())
		if err != nil {
			return nil, nil, "", err
		}
		u := id.URI() // unescaped: the instance reads *, not %2A
		return tlsx.DialOption(b, "polaris"), nil, "tier certificate " + u.Scheme + "://" + u.Host + u.Path, nil
	}
	tok := s.AdminToken()
	if tok == "" {
		return nil, nil, "", fmt.Errorf("no CA key to issue a loader certificate (%v) and no admin token", caErr)
	}
	opt, err = s.DialOption("polaris")
	return opt, metadata.Pairs("authorization", "Bearer "+tok), "asfctl certificate and the polaris admin token", err
}

// measurePropagation registers two fake instances of probeService with polaris, subscribes to
// their NATS load events, then flips which one has more idle slots, timing (a) heartbeat sent →
// NATS event received and (b) heartbeat sent → lbclient's Pick puts the new favourite first.
func measurePropagation(ctx context.Context, s Suite, samples int, poll time.Duration) (*propagation, error) {
	dir, err := os.MkdirTemp("", "asfbench-probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // the probe's key lives only as long as the probe
	popt, md, how, err := probeRegistrar(s, dir)
	if err != nil {
		return nil, fmt.Errorf("probe registration: %w", err)
	}
	lopt, err := s.DialOption("lbclient")
	if err != nil {
		return nil, err
	}
	pc, err := grpc.NewClient(s.PolarisAddr(), popt)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	lc, err := grpc.NewClient(s.LBAddr(), lopt)
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	reg := polarispb.NewRegistryClient(pc)
	lb := lbpb.NewLbClient(lc)
	if md != nil {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	info, err := reg.Info(cctx, &polarispb.InfoRequest{})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("polaris info: %w", err)
	}
	prefix := info.GetSubjectPrefix()
	if prefix == "" {
		prefix = "asf"
	}
	nopts, err := natsOptions(s)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(info.GetNatsUrl(), nopts...)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", info.GetNatsUrl(), err)
	}
	defer nc.Close()
	type ev struct {
		addr string
		idle int32
		at   time.Time
	}
	events := make(chan ev, 256)
	subject := natsbus.LoadSubject(prefix, probeService)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		at := time.Now()
		var e polarispb.RegistryEvent
		if proto.Unmarshal(m.Data, &e) != nil {
			return
		}
		for _, in := range e.GetInstances() {
			select {
			case events <- ev{addr: in.GetInstance().GetAddr(), idle: in.GetLoad().GetIdle(), at: at}:
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		return nil, err
	}
	// A subscription outside the user's permissions is refused asynchronously; the flush
	// round trip has carried the refusal back by now.
	if err := nc.LastError(); err != nil {
		return nil, fmt.Errorf("nats subscribe %s: %w", subject, err)
	}

	addrs := [2]string{"127.0.0.1:1", "127.0.0.1:2"}
	const total = 1 << 20
	var mu sync.Mutex
	idle := [2]int32{total, 10}
	for i, a := range addrs {
		if _, err := reg.Register(ctx, &polarispb.RegisterRequest{
			Instance: &polarispb.Instance{Service: probeService, Addr: a, Kind: "provider"},
			Load:     &polarispb.Load{Total: total, Best: total, Idle: idle[i], Live: 1},
		}); err != nil {
			return nil, fmt.Errorf("register probe: %w", err)
		}
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if md != nil {
			dctx = metadata.NewOutgoingContext(dctx, md)
		}
		for _, a := range addrs {
			_, _ = reg.Deregister(dctx, &polarispb.DeregisterRequest{Service: probeService, Addr: a})
		}
	}()
	heartbeat := func(i int) error {
		mu.Lock()
		ld := &polarispb.Load{Total: total, Best: total, Idle: idle[i], Live: 1}
		mu.Unlock()
		_, err := reg.Heartbeat(ctx, &polarispb.HeartbeatRequest{Service: probeService, Addr: addrs[i], Load: ld})
		return err
	}
	// Keep both probes live between samples, as a loader's one-second heartbeat would.
	hbCtx, hbStop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				_ = heartbeat(0)
				_ = heartbeat(1)
			}
		}
	}()
	defer func() { hbStop(); wg.Wait() }()

	pickFirst := func() string {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		r, err := lb.Pick(cctx, &lbpb.PickRequest{Service: probeService, N: 2})
		if err != nil || len(r.GetAddrs()) == 0 {
			return ""
		}
		return r.GetAddrs()[0]
	}
	// Wait until lbclient knows the probes.
	deadline := time.Now().Add(5 * time.Second)
	for pickFirst() == "" {
		if time.Now().After(deadline) {
			return nil, errors.New("lbclient never listed the probe instances")
		}
		time.Sleep(20 * time.Millisecond)
	}

	p := &propagation{samples: samples, registeredAs: how}
	fav := 0
	for k := 0; k < samples; k++ {
		// Make the other instance the favourite: give it many idle slots, the old one few.
		next := 1 - fav
		marker := int32(total - 1 - k)
		sent := time.Now()
		mu.Lock()
		idle[next], idle[fav] = marker, 10
		mu.Unlock()
		drain(events)
		if err := heartbeat(fav); err != nil {
			return nil, fmt.Errorf("heartbeat: %w", err)
		}
		if err := heartbeat(next); err != nil {
			return nil, fmt.Errorf("heartbeat: %w", err)
		}
		pickDone := false
		natsDone := false
		limit := time.Now().Add(2 * time.Second)
		for (!pickDone || !natsDone) && time.Now().Before(limit) {
			select {
			case e := <-events:
				if !natsDone && e.addr == addrs[next] && e.idle == marker {
					p.nats.Record(e.at.Sub(sent))
					natsDone = true
				}
				continue
			default:
			}
			if !pickDone && pickFirst() == addrs[next] {
				p.pick.Record(time.Since(sent))
				pickDone = true
				continue
			}
			time.Sleep(poll)
		}
		if !pickDone {
			p.pickMissed++
		}
		fav = next
	}
	if p.nats.Count() == 0 {
		return nil, fmt.Errorf("no NATS load event received on %s", subject)
	}
	return p, nil
}

func drain[T any](ch chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
