// Package chaos injects process faults into a suite of real binaries (tools/suite) under
// steady once and stream load and checks what the clients saw against thresholds:
// `make chaos` (tools/cmd/asfchaos) runs the whole table, tests run single rows.
//
//	res, err := chaos.RunFault(ctx, chaos.Options{BinDir: "bin"}, chaos.Faults()[1])
//	fmt.Println(chaos.Markdown([]chaos.Result{res}), res.Pass())
//
// Every row starts a fresh suite (two loaders, two atoms, two lbclients), runs the load
// for Options.Warm, injects the fault, keeps the load running until the row's window
// ends, and evaluates:
//   - a request or session that started after the fault must succeed (its failure is a
//     "late" failure; the threshold is 0 on every row);
//   - rows with ZeroOnce: no once request may fail at all (the loader, polaris, NATS);
//   - rows with ZeroStream: no session may fail at all (polaris, NATS);
//   - every session ends with its results or exactly one error frame ("bad" = 0).
package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/suite"
)

// Kind is what a fault does to its processes.
type Kind string

// The fault kinds.
const (
	Kill        Kind = "SIGKILL"         // SIGKILL, then restart after the window
	KillRestart Kind = "SIGKILL+restart" // SIGKILL and restart at once (a supervisor)
	Freeze      Kind = "SIGSTOP"         // SIGSTOP for Hold, then SIGCONT
	TermRestart Kind = "SIGTERM+restart" // graceful stop and restart at once
)

// Fault is one row of the table.
type Fault struct {
	Name    string   // as shown in the table
	Kind    Kind     // what is done
	Targets []string // process names (suite: loader-2, atom-2, lbclient-2, polaris)
	Hold    time.Duration
	// ZeroOnce: no once request may fail; ZeroStream: no session may fail.
	ZeroOnce, ZeroStream bool
	// NATS: measure how long lbclients stay disconnected from NATS.
	NATS bool
}

// Faults is the chaos table.
func Faults() []Fault {
	return []Fault{
		{Name: "SIGKILL a loader", Kind: Kill, Targets: []string{"loader-2"}, ZeroOnce: true},
		{Name: "SIGKILL an atom", Kind: Kill, Targets: []string{"atom-2"}},
		{Name: "SIGKILL an lbclient", Kind: Kill, Targets: []string{"lbclient-2"}},
		{Name: "SIGKILL an atom and an lbclient", Kind: Kill, Targets: []string{"atom-2", "lbclient-2"}},
		{Name: "SIGKILL polaris (restarted at once)", Kind: KillRestart, Targets: []string{"polaris"}, ZeroOnce: true, ZeroStream: true},
		{Name: "SIGSTOP a loader for 10 s", Kind: Freeze, Targets: []string{"loader-2"}, Hold: 10 * time.Second, ZeroOnce: true},
		{Name: "NATS restart (polaris SIGTERM, restarted)", Kind: TermRestart, Targets: []string{"polaris"}, ZeroOnce: true, ZeroStream: true, NATS: true},
	}
}

// Options configure a run.
type Options struct {
	BinDir string
	// LogDir receives one directory of process logs per row (default: temporary).
	LogDir string
	// Warm is the load before the fault, Window the load after it (default 3 s, 8 s; a
	// freeze's window is at least its Hold plus 4 s).
	Warm, Window time.Duration
	// OnceWorkers and StreamWorkers size the load (default 4 and 3).
	OnceWorkers, StreamWorkers int
	// Progress, when set, receives one line per step.
	Progress io.Writer
}

// Result is what one row measured.
type Result struct {
	Fault Fault
	// Once and Stream: ops that ended after the fault (and the in-flight ones cut by it).
	Once, Stream Counts
	// InFlightOnce and InFlightStream are the ops running at the instant of the fault.
	InFlightOnce, InFlightStream int
	// Recovery is from the fault to the end of the last failed op (0: none failed).
	Recovery time.Duration
	// MaxOnce is the slowest once request that ended after the fault.
	MaxOnce time.Duration
	// Restart is how long the restarted process took to be ready (0: none restarted).
	Restart time.Duration
	// NATSDown is how long the lbclients were disconnected from NATS (NATS rows).
	NATSDown time.Duration
	// Failures lists why ops failed (distinct messages, with counts).
	Failures []string
	// Notes are further measurements of the row (shown under the table).
	Notes []string
	// Violations say which threshold failed; empty means the row passed.
	Violations []string
	Err        error
}

// Counts are the ops of one kind.
type Counts struct {
	Total, Failed int
	// Cut are failures of ops already running at the fault; Late of ops started after it.
	Cut, Late int
	// Bad are sessions that ended without their results and without one error frame.
	Bad int
}

// Pass reports whether the row met every threshold.
func (r Result) Pass() bool { return r.Err == nil && len(r.Violations) == 0 }

func (o Options) progress(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", a...)
	}
}

// RunFault starts a suite, runs one row and stops the suite.
func RunFault(ctx context.Context, o Options, f Fault) (res Result, err error) {
	res.Fault = f
	if o.Warm <= 0 {
		o.Warm = 3 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 8 * time.Second
	}
	if f.Kind == Freeze {
		o.Window = max(o.Window, f.Hold+4*time.Second)
	}
	if o.OnceWorkers <= 0 {
		o.OnceWorkers = 4
	}
	if o.StreamWorkers <= 0 {
		o.StreamWorkers = 3
	}
	logDir := ""
	if o.LogDir != "" {
		logDir = filepath.Join(o.LogDir, slug(f.Name), "logs")
	}
	o.progress("== %s: starting the suite", f.Name)
	s, err := suite.Start(ctx, suite.Options{BinDir: o.BinDir, Loaders: 2, Atoms: 2, LBClients: 2, LogDir: logDir})
	if err != nil {
		res.Err = err
		return res, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if serr := s.Stop(sctx); serr != nil && err == nil {
			o.progress("   stop: %v", serr)
		}
	}()
	app := s.App()
	l := &Load{URL: s.WebgateURL(), Service: "echo", AppID: app.AppID, App: asfbench.Credentials{APIKey: app.APIKey, APISecret: app.APISecret},
		OnceWorkers: o.OnceWorkers, StreamWorkers: o.StreamWorkers, Frames: 5, FrameGap: 40 * time.Millisecond}
	l.Start(ctx)
	defer l.Stop()
	begin := time.Now()
	// Warm: until both kinds succeed and Warm has passed.
	if err := waitUntil(ctx, 30*time.Second, func() bool {
		return time.Since(begin) >= o.Warm && l.Successes(false, begin) > 0 && l.Successes(true, begin) > 0
	}); err != nil {
		res.Err = fmt.Errorf("no successful load before the fault: %w (logs: %s)", err, s.LogDir())
		return res, res.Err
	}
	lbAdmins := s.AdminAddrs()["lbclient"]

	faultAt := time.Now()
	res.InFlightOnce, res.InFlightStream = l.InFlight()
	o.progress("   %s %v (in flight: %d once, %d sessions)", f.Kind, f.Targets, res.InFlightOnce, res.InFlightStream)
	var restartErr error
	// hitAt is when the fault has fully landed (the process is dead, stopped or gone):
	// ops started between faultAt and hitAt were running on it too.
	hitAt := faultAt
	natsDone := make(chan time.Duration, 1)
	if f.NATS {
		go func() { natsDone <- natsDownFor(ctx, lbAdmins, faultAt, o.Window) }() // ends within the window
	}
	switch f.Kind {
	case Kill:
		for _, t := range f.Targets {
			if err := s.Kill(t); err != nil {
				restartErr = err
			}
		}
		hitAt = time.Now()
	case KillRestart, TermRestart:
		for _, t := range f.Targets {
			if f.Kind == KillRestart {
				restartErr = s.Kill(t)
			} else {
				restartErr = s.Terminate(ctx, t)
			}
			hitAt = time.Now()
			if restartErr == nil {
				t0 := time.Now()
				restartErr = s.Restart(ctx, t)
				res.Restart = time.Since(t0)
			}
		}
	case Freeze:
		for _, t := range f.Targets {
			restartErr = s.Signal(t, syscall.SIGSTOP)
		}
		hitAt = time.Now()
		sleepCtx(ctx, f.Hold)
		for _, t := range f.Targets {
			if err := s.Signal(t, syscall.SIGCONT); err != nil {
				restartErr = err
			}
		}
	}
	if restartErr != nil {
		res.Err = restartErr
		return res, restartErr
	}
	sleepCtx(ctx, time.Until(faultAt.Add(o.Window)))
	if f.Kind == Kill { // bring the killed processes back, as a supervisor would, and measure
		t0 := time.Now()
		for _, t := range f.Targets {
			if err := s.Restart(ctx, t); err != nil {
				res.Err = err
				return res, err
			}
		}
		res.Restart = time.Since(t0)
		// Load keeps running briefly on the restored suite: a restart must not fail requests.
		sleepCtx(ctx, 2*time.Second)
	}
	l.Stop()
	if f.NATS {
		res.NATSDown = <-natsDone
	}
	Evaluate(&res, l.Ops(), faultAt, hitAt)
	return res, nil
}

// Evaluate counts the ops that ended after the fault and checks the thresholds into res
// (res.Fault and res.InFlightOnce/InFlightStream at faultAt set by the caller). Ops
// started before hitAt (the fault fully landed) were running on the faulty process and
// count as in flight ("cut" when they fail); later ones must succeed. RunFault uses it;
// so do fault tables run against other deployments (tests/compose).
func Evaluate(res *Result, ops []Op, faultAt, hitAt time.Time) {
	why := map[string]int{}
	for _, op := range ops {
		if op.End.Before(faultAt) {
			continue
		}
		c := &res.Once
		if op.Stream {
			c = &res.Stream
		}
		if op.Start.After(faultAt) && op.Start.Before(hitAt) { // started while the fault landed
			if op.Stream {
				res.InFlightStream++
			} else {
				res.InFlightOnce++
			}
		}
		c.Total++
		if op.Bad {
			c.Bad++
		}
		if !op.Failed() {
			if !op.Stream {
				res.MaxOnce = max(res.MaxOnce, op.End.Sub(op.Start))
			}
			continue
		}
		c.Failed++
		if op.Start.Before(hitAt) {
			c.Cut++
		} else {
			c.Late++
		}
		res.Recovery = max(res.Recovery, op.End.Sub(faultAt))
		kind := "once"
		if op.Stream {
			kind = "stream"
		}
		why[kind+": "+shorten(op.Err)]++
	}
	for msg, n := range why {
		res.Failures = append(res.Failures, fmt.Sprintf("%d× %s", n, msg))
	}
	sort.Strings(res.Failures)
	v := &res.Violations
	if res.Once.Late > 0 {
		*v = append(*v, fmt.Sprintf("%d once requests started after the fault failed (want 0)", res.Once.Late))
	}
	if res.Stream.Late > 0 {
		*v = append(*v, fmt.Sprintf("%d sessions started after the fault failed (want 0)", res.Stream.Late))
	}
	if res.Fault.ZeroOnce && res.Once.Failed > 0 {
		*v = append(*v, fmt.Sprintf("%d once requests failed (want 0)", res.Once.Failed))
	}
	if res.Fault.ZeroStream && res.Stream.Failed > 0 {
		*v = append(*v, fmt.Sprintf("%d sessions failed (want 0)", res.Stream.Failed))
	}
	if res.Once.Cut > res.InFlightOnce {
		*v = append(*v, fmt.Sprintf("%d once requests in flight at the fault failed, more than the %d running", res.Once.Cut, res.InFlightOnce))
	}
	if res.Stream.Cut > res.InFlightStream {
		*v = append(*v, fmt.Sprintf("%d sessions in flight at the fault failed, more than the %d running", res.Stream.Cut, res.InFlightStream))
	}
	if n := res.Stream.Bad; n > 0 {
		*v = append(*v, fmt.Sprintf("%d sessions ended without their results or one error frame (want 0)", n))
	}
	if res.Once.Total == 0 || res.Stream.Total == 0 {
		*v = append(*v, "no load measured after the fault")
	}
}

// natsDownFor polls every lbclient's /v1/view until window has passed from since and
// returns the longest stretch any of them reported nats_connected=false.
func natsDownFor(ctx context.Context, admins []string, since time.Time, window time.Duration) time.Duration {
	c := &http.Client{Timeout: time.Second}
	downSince := map[string]time.Time{}
	var worst time.Duration
	for time.Since(since) < window && ctx.Err() == nil {
		for _, a := range admins {
			ok := natsConnected(c, a)
			now := time.Now()
			if !ok {
				if downSince[a].IsZero() {
					downSince[a] = now
				}
				worst = max(worst, now.Sub(downSince[a]))
			} else if !downSince[a].IsZero() {
				worst = max(worst, now.Sub(downSince[a]))
				downSince[a] = time.Time{}
			}
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	return worst
}

func natsConnected(c *http.Client, admin string) bool {
	resp, err := c.Get("http://" + admin + "/v1/view")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var v struct {
		Source struct {
			Connected bool `json:"nats_connected"`
		} `json:"source"`
	}
	return json.NewDecoder(resp.Body).Decode(&v) == nil && v.Source.Connected
}

// Markdown renders the results as the chaos table.
func Markdown(rs []Result) string {
	var b strings.Builder
	b.WriteString("| fault | once ok / failed (cut, late) | sessions ok / failed (cut, late, bad) | in flight at fault (once, sessions) | recovery | slowest once | restart | threshold | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		th := "late 0, bad 0"
		switch {
		case r.Fault.ZeroOnce && r.Fault.ZeroStream:
			th = "once 0, sessions 0, bad 0"
		case r.Fault.ZeroOnce:
			th = "once 0, sessions late 0, bad 0"
		default:
			th = "cut ≤ in flight, late 0, bad 0"
		}
		result := "PASS"
		if !r.Pass() {
			result = "FAIL"
		}
		restart := "-"
		if r.Restart > 0 {
			restart = r.Restart.Round(10 * time.Millisecond).String()
		}
		if r.Fault.NATS {
			restart += fmt.Sprintf("; lbclients off NATS %s", r.NATSDown.Round(10*time.Millisecond))
		}
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | - | - | - | - | - | - | %s | FAIL: %v |\n", r.Fault.Name, th, r.Err)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d / %d (%d, %d) | %d / %d (%d, %d, %d) | %d, %d | %s | %s | %s | %s | %s |\n",
			r.Fault.Name, r.Once.Total-r.Once.Failed, r.Once.Failed, r.Once.Cut, r.Once.Late,
			r.Stream.Total-r.Stream.Failed, r.Stream.Failed, r.Stream.Cut, r.Stream.Late, r.Stream.Bad,
			r.InFlightOnce, r.InFlightStream, r.Recovery.Round(10*time.Millisecond), r.MaxOnce.Round(time.Millisecond), restart, th, result)
	}
	b.WriteString("\n")
	for _, r := range rs {
		if len(r.Failures) == 0 && len(r.Violations) == 0 && len(r.Notes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "- **%s**", r.Fault.Name)
		if len(r.Notes) > 0 {
			fmt.Fprintf(&b, " — %s", strings.Join(r.Notes, "; "))
		}
		if len(r.Violations) > 0 {
			fmt.Fprintf(&b, " — violated: %s", strings.Join(r.Violations, "; "))
		}
		if len(r.Failures) > 0 {
			fmt.Fprintf(&b, " — failures: %s", strings.Join(r.Failures, "; "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func shorten(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

func slug(s string) string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') })
	return strings.Join(f, "-")
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// waitUntil polls cond every 20 ms until it holds, d passes or ctx ends.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	return nil
}
