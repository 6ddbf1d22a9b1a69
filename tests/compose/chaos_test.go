package compose

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/chaos"
)

// How a row hits its container.
const (
	dockerKill    = "kill"    // docker kill (SIGKILL), started again after the window
	dockerPause   = "pause"   // docker pause (the cgroup freezer, as SIGSTOP) for Hold
	dockerRestart = "restart" // docker restart (SIGTERM, started again at once)
	dockerStop    = "stop"    // docker stop (SIGTERM) for the window, started again after it
)

// chaosRow is one fault of the compose stack's table, on one container of service.
type chaosRow struct {
	fault   chaos.Fault
	action  string
	service string
	// admin is the container's readiness URL (inside it); served the counter that grows
	// with the traffic it serves (empty: not measured).
	admin, served string
	// loader: measure when the container leaves every lbclient's echo rotation.
	loader bool
	// edge: a webgate behind the front proxy; measure when the proxy has it back up.
	edge bool
}

// The thresholds beyond the chaos package's (late 0, bad 0, zero-failure rows).
const (
	// noticeBound: a dead or frozen loader leaves every lbclient's rotation this soon after
	// the fault (stale-after 3 s after its last heartbeat, plus the event's delivery).
	noticeBound = 3*time.Second + 250*time.Millisecond
	// backInUseBound: a restarted atom gets calls this soon after it answers /readyz
	// (reconnect back-off ≤ 1 s ± 20 %, plus the docker exec polls that observe it).
	backInUseBound = 2 * time.Second
	// proxyBackBound: a webgate ready again is up at the proxy this soon (its DNS is
	// re-resolved every second, its port checked every 500 ms).
	proxyBackBound = 3 * time.Second
	chaosWarm      = 3 * time.Second
	chaosWindow    = 8 * time.Second
	chaosAfter     = 2 * time.Second // load on the restored stack before the row ends
)

func chaosRows() []chaosRow {
	return []chaosRow{
		{fault: chaos.Fault{Name: "SIGKILL a loader", Kind: chaos.Kill, ZeroOnce: true}, action: dockerKill,
			service: "loader-echo", admin: "http://127.0.0.1:5091/readyz", served: "asf_loader_once_requests_total", loader: true},
		{fault: chaos.Fault{Name: "SIGSTOP a loader for 10 s (docker pause)", Kind: chaos.Freeze, Hold: 10 * time.Second, ZeroOnce: true},
			action: dockerPause, service: "loader-echo", loader: true},
		{fault: chaos.Fault{Name: "SIGKILL an atom", Kind: chaos.Kill}, action: dockerKill,
			service: "atom-2", admin: "http://127.0.0.1:9987/readyz", served: "asf_atom_requests_total"},
		{fault: chaos.Fault{Name: "SIGKILL an lbclient", Kind: chaos.Kill}, action: dockerKill,
			service: "lbclient-2", admin: "http://127.0.0.1:9990/readyz", served: "asf_lbclient_picks_total"},
		{fault: chaos.Fault{Name: "SIGKILL a webgate behind the front proxy", Kind: chaos.Kill}, action: dockerKill,
			service: "webgate", admin: "http://127.0.0.1:8890/readyz", served: "asf_webgate_requests_total", edge: true},
		{fault: chaos.Fault{Name: "restart webgate behind the front proxy (docker restart)", Kind: chaos.TermRestart, ZeroOnce: true, ZeroStream: true},
			action: dockerRestart, service: "webgate", admin: "http://127.0.0.1:8890/readyz", edge: true},
		{fault: chaos.Fault{Name: "NATS restart (docker restart)", Kind: chaos.TermRestart, ZeroOnce: true, ZeroStream: true, NATS: true},
			action: dockerRestart, service: "nats", admin: "http://127.0.0.1:8222/healthz"},
		{fault: chaos.Fault{Name: "polaris replica stopped for 8 s (docker stop)", Kind: chaos.TermRestart, ZeroOnce: true, ZeroStream: true},
			action: dockerStop, service: "polaris", admin: "http://127.0.0.1:6869/readyz"},
	}
}

// runChaos runs the rows in order on the running stack, each under fresh load after the
// stack is whole again, and writes the table to the log and to ASF_CHAOS_OUT when set.
func (e env) runChaos(t *testing.T) {
	var results []chaos.Result
	for _, r := range chaosRows() {
		ok := t.Run(r.fault.Name, func(t *testing.T) {
			e.whole(t)
			res := e.runRow(t, r)
			results = append(results, res)
			for _, v := range res.Violations {
				t.Errorf("threshold: %s", v)
			}
			if res.Err != nil {
				t.Error(res.Err)
			}
		})
		if !ok && t.Context().Err() != nil {
			break
		}
	}
	table := chaos.Markdown(results)
	t.Logf("compose chaos table:\n%s", table)
	if out := os.Getenv("ASF_CHAOS_OUT"); out != "" {
		doc := fmt.Sprintf("# Compose chaos run %s\n\n"+
			"docker-compose stack (deploy/compose): 3 echo loaders, 2 atoms, 2 lbclients, 2 polaris (Consul), NATS, 2 webgates behind the front proxy (HAProxy); "+
			"%d once loops and %d session loops (5 frames, 40 ms apart) through the proxy's published port; "+
			"%s of load before each fault and %s after it; killed and stopped containers are started again after it.\n"+
			"cut = failures of ops running at the fault; late = failures of ops started after it; "+
			"bad = sessions that ended without their results and without exactly one error frame; "+
			"recovery = fault → end of the last failed op; restart = until the container answers its readiness probe.\n\n%s",
			time.Now().UTC().Format(time.RFC3339), onceWorkers, streamWorkers, chaosWarm, chaosWindow, table)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Error(err)
		} else if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
			t.Error(err)
		} else {
			t.Logf("compose chaos table written to %s", out)
		}
	}
}

const onceWorkers, streamWorkers = 4, 3

// whole waits until the stack is whole: every echo loader in every lbclient's rotation
// (at its current address), both atoms and lbclients ready, every webgate ready and up at
// the proxy.
func (e env) whole(t *testing.T) {
	t.Helper()
	waitFor(t, 60*time.Second, "every echo loader in every lbclient's rotation, atoms, lbclients and webgates ready", func() bool {
		if !e.webgatesUp(t) {
			return false
		}
		for _, svc := range []string{"atom-1", "atom-2", "lbclient-1", "lbclient-2", "webgate"} {
			for _, c := range e.containers(t, svc) {
				if !ready(c, readyURL[svc]) {
					return false
				}
			}
		}
		loaders := e.containers(t, "loader-echo")
		for _, lb := range e.lbclients(t) {
			rot, err := inRotation(lb, "echo")
			if err != nil {
				return false
			}
			for _, c := range loaders {
				a, err := addrOf(c)
				if err != nil || !rot[a] {
					return false
				}
			}
		}
		return true
	})
}

var readyURL = map[string]string{
	"atom-1": "http://127.0.0.1:9987/readyz", "atom-2": "http://127.0.0.1:9987/readyz",
	"lbclient-1": "http://127.0.0.1:9990/readyz", "lbclient-2": "http://127.0.0.1:9990/readyz",
	"webgate": "http://127.0.0.1:8890/readyz",
}

func (e env) lbclients(t *testing.T) []string {
	return append(e.containers(t, "lbclient-1"), e.containers(t, "lbclient-2")...)
}

// ready reports whether url answers 2xx inside container.
func ready(container, url string) bool {
	_, err := docker("exec", container, "/usr/local/bin/asfbox", "probe", "-q", url)
	return err == nil
}

// addrOf is a loader container's registered address (its IP, port 5090).
func addrOf(container string) (string, error) {
	out, err := docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container)
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return "", fmt.Errorf("%s has no address", container)
	}
	return f[0] + ":5090", nil
}

// runRow runs one row: load until it succeeds for chaosWarm, the fault, the window,
// the container back, chaosAfter more load, then the evaluation.
func (e env) runRow(t *testing.T, r chaosRow) chaos.Result {
	res := chaos.Result{Fault: r.fault}
	cs := e.containers(t, r.service)
	if len(cs) == 0 {
		res.Err = fmt.Errorf("no running container of %s", r.service)
		return res
	}
	victim := cs[len(cs)-1]
	res.Fault.Targets = []string{victim}
	var victimAddr string
	if r.loader {
		a, err := addrOf(victim)
		if err != nil {
			res.Err = err
			return res
		}
		victimAddr = a
	}

	// Sessions held open on both webgates before the load, to see exactly what a client
	// sees when the webgate under its session dies.
	var held *probes
	if r.edge && r.action == dockerKill {
		var err error
		if held, err = e.openProbes(t, victim, 4); err != nil {
			res.Err = err
			return res
		}
		defer held.close()
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	l := &chaos.Load{URL: e.base, Service: "echo", AppID: e.creds.appID,
		App:         asfbench.Credentials{APIKey: e.creds.key, APISecret: e.creds.secret},
		OnceWorkers: onceWorkers, StreamWorkers: streamWorkers, Frames: 5, FrameGap: 40 * time.Millisecond}
	l.Start(ctx)
	defer l.Stop()
	begin := time.Now()
	waitFor(t, 30*time.Second, "once and stream load succeeding", func() bool {
		return time.Since(begin) >= chaosWarm && l.Successes(false, begin) > 0 && l.Successes(true, begin) > 0
	})

	window := chaosWindow
	if r.action == dockerPause {
		window = max(window, r.fault.Hold+4*time.Second)
	}
	faultAt := time.Now()
	res.InFlightOnce, res.InFlightStream = l.InFlight()
	hitAt := faultAt

	// Measurements that run through the window.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var notes []string
	var violations []string
	note := func(v bool, format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if v {
			violations = append(violations, fmt.Sprintf(format, a...))
		} else {
			notes = append(notes, fmt.Sprintf(format, a...))
		}
	}
	// noticed measures, from the fault's landing, when the loader leaves every lbclient's
	// rotation.
	lbs := e.lbclients(t)
	noticed := func(landed time.Time) {
		if !r.loader {
			return
		}
		for _, lb := range lbs {
			wg.Add(1)
			go func() { // owned by runRow: ends within noticeBound + 5 s
				defer wg.Done()
				lo, hi, err := leftRotation(lb, victimAddr, landed, noticeBound+5*time.Second)
				switch {
				case err != nil:
					note(true, "%v", err)
				case lo > noticeBound:
					note(true, "%s still routed to the loader %s after the fault (want ≤ %s)", e.short(lb), lo.Round(10*time.Millisecond), noticeBound)
				default:
					note(false, "left %s's rotation %s–%s after the fault", e.short(lb), lo.Round(10*time.Millisecond), hi.Round(10*time.Millisecond))
				}
			}()
		}
	}
	if r.fault.NATS {
		wg.Add(1)
		go func() { // owned by runRow: ends when the window does
			defer wg.Done()
			res.NATSDown = natsDownFor(lbs, faultAt, window)
		}()
	}

	// backAtProxy measures, from ready, when the proxy has the webgate up again.
	backAtProxy := func(ready time.Time) {
		if !r.edge {
			return
		}
		waitFor(t, 30*time.Second, victim+" up at the proxy", func() bool { return e.webgatesUp(t) })
		d := time.Since(ready)
		note(d > proxyBackBound, "up at the proxy %s after it was ready (bound %s)", d.Round(10*time.Millisecond), proxyBackBound)
	}
	if r.edge {
		b := e.backendOf(t, victim)
		note(false, "%d connections open on %s at the fault", b.Cur, e.short(victim))
	}

	var err error
	switch r.action {
	case dockerKill:
		// SIGKILL has landed when docker kill returns; the container is reaped after.
		if _, err = docker("kill", victim); err == nil {
			hitAt = time.Now()
			noticed(hitAt)
			if held != nil {
				vs, n := held.check(e, faultAt, hitAt)
				for _, v := range vs {
					note(true, "%s", v)
				}
				if n != "" {
					note(false, "%s", n)
				}
			}
		}
	case dockerPause:
		if _, err = docker("pause", victim); err == nil {
			hitAt = time.Now()
			noticed(hitAt)
			hold(r.fault.Hold)
			_, err = docker("unpause", victim)
		}
	case dockerRestart:
		t0 := time.Now()
		if _, err = docker("restart", "-t", "10", victim); err == nil {
			if msg := crashed(victim, faultAt); msg != "" {
				note(true, "%s did not stop cleanly: %s", e.short(victim), msg)
			}
			waitFor(t, 60*time.Second, victim+" ready", func() bool { return ready(victim, r.admin) })
			res.Restart = time.Since(t0)
			backAtProxy(time.Now())
		}
	case dockerStop:
		_, err = docker("stop", "-t", "10", victim)
	}
	if err != nil {
		res.Err = err
		return res
	}
	hold(time.Until(faultAt.Add(window)))

	switch r.action {
	case dockerStop:
		if msg := crashed(victim, faultAt); msg != "" {
			note(true, "%s did not stop cleanly: %s", e.short(victim), msg)
		}
		// Longer than the registry TTL: routing held through the other replica.
		for _, lb := range e.lbclients(t) {
			rot, err := inRotation(lb, "echo")
			if n := len(e.containers(t, "loader-echo")); err != nil || len(rot) != n {
				note(true, "%s: %d echo loaders in rotation (%v), want all %d", e.short(lb), len(rot), err, n)
			}
		}
		fallthrough
	case dockerKill:
		t0 := time.Now()
		if _, err := docker("start", victim); err != nil {
			res.Err = err
			return res
		}
		waitFor(t, 60*time.Second, victim+" ready again", func() bool { return ready(victim, r.admin) })
		readyAt := time.Now()
		res.Restart = readyAt.Sub(t0)
		backAtProxy(readyAt)
		if r.served != "" {
			inUse, err := backInUse(victim, adminPort(r.admin), r.served, readyAt, 10*time.Second)
			switch {
			case err != nil && r.service != "lbclient-2":
				note(true, "%v", err)
			case err != nil: // atom's pick streams move to it as they retire
				note(false, "restarted %s not picked from within %s of being ready (pick streams retire every 30 s)", r.service, 10*time.Second)
			case r.service == "atom-2" && inUse > backInUseBound:
				note(true, "restarted atom got calls %s after it was ready (want ≤ %s)", inUse.Round(10*time.Millisecond), backInUseBound)
			default:
				note(false, "restarted %s served again %s after it was ready", r.service, inUse.Round(10*time.Millisecond))
			}
		}
	}
	hold(chaosAfter)
	wg.Wait()
	l.Stop()
	ops := l.Ops()
	if r.edge {
		seen := map[string]bool{}
		for _, op := range ops {
			if op.Failed() && !seen[op.Err] && len(seen) < 3 {
				seen[op.Err] = true
				t.Logf("failed (stream %v): %s", op.Stream, op.Err)
			}
		}
	}
	if r.edge && r.action == dockerKill {
		for _, op := range ops {
			if op.Failed() && !op.Stream && !onceCut(op.Err) {
				note(true, "a once request failed otherwise than cut by the proxy (EOF or HTTP 502): %s", op.Err)
			}
		}
		if n := classifyEdgeCut(ops, hitAt); n > 0 {
			note(false, "%d sessions cut by the proxy closing their connection (%s)", n, cutByProxy)
		}
	}
	chaos.Evaluate(&res, ops, faultAt, hitAt)
	res.Notes = append(res.Notes, notes...)
	res.Violations = append(res.Violations, violations...)
	if res.NATSDown > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("lbclients off NATS for %s", res.NATSDown.Round(10*time.Millisecond)))
	}
	t.Logf("%s on %s: once %d/%d failed, sessions %d/%d failed, recovery %s, restart %s %v",
		r.fault.Name, victim, res.Once.Failed, res.Once.Total, res.Stream.Failed, res.Stream.Total,
		res.Recovery.Round(10*time.Millisecond), res.Restart.Round(10*time.Millisecond), res.Notes)
	return res
}

// crashed returns crashLine of what container logged since t.
func crashed(container string, since time.Time) string {
	out, err := dockerOutput("logs", "--since", since.Format(time.RFC3339Nano), container)
	if err != nil {
		return err.Error()
	}
	return crashLine(out)
}

// crashLine finds a Go panic or runtime fatal error in a log and returns its first line
// and the first three non-runtime functions of the failing goroutine ("" for none).
func crashLine(out string) string {
	for _, marker := range []string{"panic: ", "fatal error: "} {
		i := strings.Index(out, marker)
		if i < 0 {
			continue
		}
		lines := strings.Split(out[i:], "\n")
		var frames []string
		inGoroutine := false
		for _, l := range lines[1:] {
			switch {
			case strings.HasPrefix(l, "goroutine "):
				inGoroutine = true
			case !inGoroutine || l == "" || strings.HasPrefix(l, "\t") ||
				strings.HasPrefix(l, "runtime.") || strings.HasPrefix(l, "internal/"):
			case len(frames) < 3:
				if i := strings.LastIndex(l, "("); i > 0 {
					l = l[:i]
				}
				frames = append(frames, l)
			}
		}
		return lines[0] + " in " + strings.Join(frames, " ← ")
	}
	return ""
}

// short is a container's name without the project's prefix.
func (e env) short(container string) string { return strings.TrimPrefix(container, e.project+"_") }

// hold keeps the load running for d: the fault's and the window's length, not a wait for
// a condition.
func hold(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

func adminPort(url string) string {
	rest := url[strings.LastIndex(url, ":")+1:]
	return rest[:strings.Index(rest, "/")]
}

// backInUse polls counter name in container (a restarted process: it starts from 0) until
// it is above 0 and returns how long after since that was seen.
func backInUse(container, port, name string, since time.Time, limit time.Duration) (time.Duration, error) {
	for time.Since(since) < limit {
		if v, err := counterValue(container, port, name); err == nil && v > 0 {
			return time.Since(since), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("restarted %s served nothing within %s of being ready", container, limit)
}

// natsDownFor polls the view of every lbclient in lbs until window has passed from since and returns
// the longest stretch any of them reported nats_connected=false.
func natsDownFor(lbs []string, since time.Time, window time.Duration) time.Duration {
	downSince := map[string]time.Time{}
	var worst time.Duration
	for time.Since(since) < window {
		for _, lb := range lbs {
			up := natsConnected(lb)
			now := time.Now()
			switch {
			case !up && downSince[lb].IsZero():
				downSince[lb] = now
			case !up:
				worst = max(worst, now.Sub(downSince[lb]))
			case !downSince[lb].IsZero():
				worst = max(worst, now.Sub(downSince[lb]))
				downSince[lb] = time.Time{}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return worst
}

func natsConnected(lb string) bool {
	body, err := get(lb, "http://127.0.0.1:9990/v1/view")
	if err != nil {
		return false
	}
	var v struct {
		Source struct {
			Connected bool `json:"nats_connected"`
		} `json:"source"`
	}
	return json.Unmarshal([]byte(body), &v) == nil && v.Source.Connected
}
