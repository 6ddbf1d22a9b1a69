package compose

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/chaos"
	"github.com/gorilla/websocket"
)

// backend is the proxy's view of one webgate slot (HAProxy's stats, backend webgate).
type backend struct {
	Name, Addr, Status string
	// Cur is the connections open to it now, Total since the proxy started.
	Cur, Total int
}

// proxyBackends reads the proxy's stats (inside its container) and returns the webgate
// slots that hold an address.
func (e env) proxyBackends(t *testing.T) ([]backend, error) {
	t.Helper()
	cs := e.containers(t, "proxy")
	if len(cs) != 1 {
		return nil, fmt.Errorf("proxy containers %v, want 1", cs)
	}
	out, err := docker("exec", cs[0], "curl", "-fsS", "http://127.0.0.1:8890/stats;csv")
	if err != nil {
		return nil, err
	}
	return parseStats(out)
}

// parseStats reads HAProxy's stats CSV: the servers of backend webgate with an address.
func parseStats(csv string) ([]backend, error) {
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "# ") {
		return nil, fmt.Errorf("stats: no header in %q", csv)
	}
	col := map[string]int{}
	for i, h := range strings.Split(strings.TrimPrefix(lines[0], "# "), ",") {
		col[h] = i
	}
	for _, h := range []string{"pxname", "svname", "status", "addr", "scur", "stot"} {
		if _, ok := col[h]; !ok {
			return nil, fmt.Errorf("stats: no column %s", h)
		}
	}
	var out []backend
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) < len(col) || f[col["pxname"]] != "webgate" {
			continue
		}
		name := f[col["svname"]]
		if name == "BACKEND" || name == "FRONTEND" || f[col["addr"]] == "" {
			continue
		}
		cur, _ := strconv.Atoi(f[col["scur"]])
		total, _ := strconv.Atoi(f[col["stot"]])
		out = append(out, backend{Name: name, Addr: f[col["addr"]], Status: f[col["status"]], Cur: cur, Total: total})
	}
	return out, nil
}

// webgatesUp reports whether the proxy has every running webgate container up, by address.
func (e env) webgatesUp(t *testing.T) bool {
	t.Helper()
	bs, err := e.proxyBackends(t)
	if err != nil {
		return false
	}
	up := map[string]bool{}
	for _, b := range bs {
		if strings.HasPrefix(b.Status, "UP") {
			up[b.Addr] = true
		}
	}
	for _, c := range e.containers(t, "webgate") {
		a, err := addrOf(c)
		if err != nil || !up[strings.TrimSuffix(a, ":5090")+":8889"] {
			return false
		}
	}
	return true
}

// backendOf is the proxy's slot for webgate container c (zero when it has none).
func (e env) backendOf(t *testing.T, c string) backend {
	t.Helper()
	a, err := addrOf(c)
	if err != nil {
		return backend{}
	}
	bs, _ := e.proxyBackends(t)
	for _, b := range bs {
		if b.Addr == strings.TrimSuffix(a, ":5090")+":8889" {
			return b
		}
	}
	return backend{}
}

// compose runs the project's compose command (ASF_COMPOSE_CMD) with args.
func (e env) compose(t *testing.T, args ...string) {
	t.Helper()
	if len(e.cmd) == 0 {
		t.Fatal("ASF_COMPOSE_CMD not set: scaling needs the project's compose command")
	}
	out, err := runCmd(e.cmd[0], append(e.cmd[1:], args...)...)
	if err != nil {
		t.Fatalf("%s %s: %v: %s", strings.Join(e.cmd, " "), strings.Join(args, " "), err, out)
	}
}

// scaleWebgate grows webgate from one replica to two under once and stream load: the
// proxy sends connections to the new replica within seconds, and not one request fails.
func (e env) scaleWebgate(t *testing.T) {
	if n := len(e.containers(t, "webgate")); n != 1 {
		t.Fatalf("%d webgate containers before scaling, want 1", n)
	}
	l := &chaos.Load{URL: e.base, Service: "echo", AppID: e.creds.appID,
		App:         asfbench.Credentials{APIKey: e.creds.key, APISecret: e.creds.secret},
		OnceWorkers: onceWorkers, StreamWorkers: streamWorkers, Frames: 5, FrameGap: 40 * time.Millisecond}
	l.Start(t.Context())
	defer l.Stop()
	begin := time.Now()
	waitFor(t, 30*time.Second, "once and stream load succeeding", func() bool {
		return l.Successes(false, begin) > 0 && l.Successes(true, begin) > 0
	})
	scaleAt := time.Now()
	e.compose(t, "up", "-d", "--no-recreate", "--scale", "webgate=2", "webgate")
	ws := e.containers(t, "webgate")
	if len(ws) != 2 {
		t.Fatalf("webgate containers %v after --scale webgate=2, want 2", ws)
	}
	waitFor(t, 60*time.Second, "both webgates up at the proxy", func() bool { return e.webgatesUp(t) })
	upAt := time.Now()
	before := map[string]int{}
	for _, c := range ws {
		before[c] = e.backendOf(t, c).Total
	}
	waitFor(t, 15*time.Second, "connections on both webgates", func() bool {
		for _, c := range ws {
			if e.backendOf(t, c).Total <= before[c] {
				return false
			}
		}
		return true
	})
	t.Logf("second webgate up at the proxy %s after the scale command, serving %s later",
		upAt.Sub(scaleAt).Round(10*time.Millisecond), time.Since(upAt).Round(10*time.Millisecond))
	l.Stop()
	var once, sessions, failed int
	for _, op := range l.Ops() {
		if op.Stream {
			sessions++
		} else {
			once++
		}
		if op.Failed() {
			failed++
			t.Errorf("failed while scaling (stream %v): %s", op.Stream, op.Err)
		}
	}
	t.Logf("while scaling: %d once requests, %d sessions, %d failed", once, sessions, failed)
	for _, c := range ws {
		b := e.backendOf(t, c)
		t.Logf("%s (%s): %d connections from the proxy", e.short(c), b.Name, b.Total)
	}
}

// cutByProxy is what a client sees of a session whose webgate died under it: the proxy
// closes the client's TCP connection with no WebSocket close frame, and the next read
// returns close 1006 (abnormal closure) with an unexpected EOF.
const cutByProxy = "websocket: close 1006 (abnormal closure): unexpected EOF"

// onceCut is what a client sees of a once request whose webgate died under it: the proxy
// closes the client's connection without an answer, so the HTTP client reads EOF (a
// request that was the first on its client connection may get HTTP 502 instead). The
// request is not sent again: it may have run.
func onceCut(err string) bool {
	return strings.HasSuffix(err, ": EOF") || strings.Contains(err, "502")
}

// classifyEdgeCut marks the sessions cut by a webgate's death as failed but not bad: they
// ran before the fault landed (hitAt) and their socket ended exactly as cutByProxy says. It
// returns how many it reclassified; any other silent end stays bad.
func classifyEdgeCut(ops []chaos.Op, hitAt time.Time) int {
	n := 0
	for i := range ops {
		op := &ops[i]
		if op.Stream && op.Bad && op.Start.Before(hitAt) && strings.HasSuffix(op.Err, cutByProxy) {
			op.Bad = false
			n++
		}
	}
	return n
}

// probeSession is a WebSocket session through the proxy held open after its first result,
// to see what its client sees when the webgate under it dies.
type probeSession struct {
	conn *websocket.Conn
	// done receives the outcome of the next read (nil: a result with code 0) and when it came.
	done chan probeRead
}

type probeRead struct {
	err error
	at  time.Time
}

// probeFrame is frame seq (status 0 first, 2 last) of an echo session.
func (e env) probeFrame(seq, status int) map[string]any {
	f := map[string]any{
		"header":  map[string]any{"app_id": e.creds.appID, "status": status},
		"payload": map[string]any{"input": map[string]any{"encoding": "utf8", "status": status, "seq": seq, "text": base64.StdEncoding.EncodeToString([]byte("probe"))}},
	}
	if seq == 0 {
		f["parameter"] = map[string]any{"echo": map[string]any{}}
	}
	return f
}

// openProbe opens a session through the proxy, gets its first result and starts awaiting
// the next read.
func (e env) openProbe() (*probeSession, error) {
	ws := "ws" + strings.TrimPrefix(signURL(e.base+"/v1/private/echo", http.MethodGet, e.creds), "http")
	c, _, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if err := c.WriteJSON(e.probeFrame(0, 0)); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var r response
	if err := c.ReadJSON(&r); err != nil || r.Header.Code != 0 {
		c.Close()
		return nil, fmt.Errorf("first result: code %d, %v", r.Header.Code, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	p := &probeSession{conn: c, done: make(chan probeRead, 1)}
	go func() { // owned by p: ends with the connection (finish or close)
		var r response
		err := c.ReadJSON(&r)
		if err == nil && r.Header.Code != 0 {
			err = fmt.Errorf("error frame %d %s", r.Header.Code, r.Header.Message)
		}
		p.done <- probeRead{err: err, at: time.Now()}
	}()
	return p, nil
}

// probes are sessions held open on both webgates across a webgate's death.
type probes struct {
	open     []*probeSession
	onVictim int // how many the proxy put on the victim
}

// openProbes opens n sessions through the proxy before any other load, so the proxy's
// leastconn spreads them over the webgates and its stats tell how many are on victim.
func (e env) openProbes(t *testing.T, victim string, n int) (*probes, error) {
	t.Helper()
	ps := &probes{}
	for range n {
		p, err := e.openProbe()
		if err != nil {
			ps.close()
			return nil, err
		}
		ps.open = append(ps.open, p)
	}
	ps.onVictim = e.backendOf(t, victim).Cur
	if ps.onVictim < 1 || ps.onVictim >= n {
		ps.close()
		return nil, fmt.Errorf("%d of %d held sessions on %s, want some on each webgate", ps.onVictim, n, victim)
	}
	return ps, nil
}

// check awaits what the held sessions see after the victim was killed (the kill sent at
// faultAt, landed by hitAt): the ones on it end within cutBound of hitAt as cutByProxy says;
// the others go on and get their last result. It returns the violations and a note.
func (ps *probes) check(e env, faultAt, hitAt time.Time) (violations []string, note string) {
	const cutBound = 2 * time.Second
	cut := map[*probeSession]probeRead{}
	deadline := time.After(time.Until(hitAt.Add(cutBound)))
	for len(cut) < ps.onVictim {
		select {
		case <-deadline:
			return append(violations, fmt.Sprintf("%d of the %d held sessions on the killed webgate ended within %s of the kill", len(cut), ps.onVictim, cutBound)), ""
		case <-time.After(20 * time.Millisecond):
		}
		for _, p := range ps.open {
			if _, ok := cut[p]; ok {
				continue
			}
			select {
			case r := <-p.done:
				cut[p] = r
			default:
			}
		}
	}
	var slowest time.Duration
	for _, r := range cut {
		slowest = max(slowest, r.at.Sub(faultAt))
		if r.err == nil || r.err.Error() != cutByProxy {
			violations = append(violations, fmt.Sprintf("a held session on the killed webgate ended with %v, want %q", r.err, cutByProxy))
		}
	}
	for _, p := range ps.open {
		if _, ok := cut[p]; ok {
			continue
		}
		if err := p.conn.WriteJSON(e.probeFrame(1, 2)); err != nil {
			violations = append(violations, fmt.Sprintf("a held session on the other webgate: last frame: %v", err))
			continue
		}
		select {
		case r := <-p.done:
			if r.err != nil {
				violations = append(violations, fmt.Sprintf("a held session on the other webgate: %v", r.err))
			}
		case <-time.After(10 * time.Second):
			violations = append(violations, "a held session on the other webgate got no last result within 10 s")
		}
	}
	note = fmt.Sprintf("held sessions: %d on the killed webgate ended with %q ≤ %s after docker kill was sent, %d on the other finished",
		len(cut), cutByProxy, slowest.Round(10*time.Millisecond), len(ps.open)-len(cut))
	ps.close()
	return violations, note
}

func (ps *probes) close() {
	for _, p := range ps.open {
		_ = p.conn.Close()
	}
}
