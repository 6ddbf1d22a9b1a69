// Package tracing tests traces across the whole suite as an operator reads them: every
// service exports to a real Jaeger (tests/jaegertest), and a once request and a
// three-frame session each give one trace, fetched from Jaeger's query API by the trace id
// webgate answered with, holding the spans of webgate, atom, lbclient and the loader under
// their service names, each under the parent docs/tracing.md "Spans per hop" gives it.
// Without bin/jaeger the tests skip, or fail when ASF_JAEGER_REQUIRED=1.
package tracing

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/jaegertest"
	"github.com/athenaserving/asf/tests/suitetest"
)

// traceWait bounds how long a trace takes to reach Jaeger whole: each service exports in
// its own batches (BatchTimeout 1 s), on a machine shared with builds.
const traceWait = 20 * time.Second

// hop is one span a request's trace must hold and the span that must be its parent.
type hop struct {
	service, op, kind string // kind: Jaeger's span.kind tag ("" for internal spans)
	parent            *hop   // nil: the trace's root (or the client's span)
	// count is how many such spans the trace holds (0: one).
	count int
}

func (h *hop) String() string {
	if h.kind != "" {
		return fmt.Sprintf("%s %q (%s)", h.service, h.op, h.kind)
	}
	return fmt.Sprintf("%s %q", h.service, h.op)
}

// spans returns the trace's spans of h.
func (h *hop) spans(tr *jaegertest.Trace) []*jaegertest.Span {
	var out []*jaegertest.Span
	for i, s := range tr.Spans {
		if s.Service == h.service && s.Operation == h.op && (h.kind == "" || s.Tags["span.kind"] == h.kind) {
			out = append(out, &tr.Spans[i])
		}
	}
	return out
}

// find returns the hop of service and op.
func find(hops []*hop, service, op string) *hop {
	for _, h := range hops {
		if h.service == service && h.op == op {
			return h
		}
	}
	panic("no hop " + service + " " + op)
}

func (h *hop) want() int { return max(h.count, 1) }

// path is the hops of a once request (op "once", rpc "Call", loader rpc "Once") or of a
// session ("session", "Stream", "Session"), parented as docs/tracing.md lists them.
func path(session bool) []*hop {
	root, rpc, attempt, lrpc := "once", "Call", "loader once", "Once"
	if session {
		root, rpc, attempt, lrpc = "session", "Stream", "loader session", "Session"
	}
	web := &hop{service: "webgate", op: root, kind: "server"}
	webCall := &hop{service: "webgate", op: "asf.atom.v1.Atom/" + rpc, kind: "client", parent: web}
	atomCall := &hop{service: "atom", op: "asf.atom.v1.Atom/" + rpc, kind: "server", parent: webCall}
	pick := &hop{service: "atom", op: "pick", parent: atomCall}
	lbPick := &hop{service: "lbclient", op: "pick", kind: "server", parent: pick}
	att := &hop{service: "atom", op: attempt, parent: atomCall}
	attCall := &hop{service: "atom", op: "asf.loader.v1.Loader/" + lrpc, kind: "client", parent: att}
	loader := &hop{service: "loader", op: "asf.loader.v1.Loader/" + lrpc, kind: "server", parent: attCall}
	hops := []*hop{web, webCall, atomCall, pick, lbPick, att, attCall, loader}
	if !session {
		return append(hops,
			&hop{service: "loader", op: "loader.licence", parent: loader},
			&hop{service: "loader", op: "engine.once", parent: loader})
	}
	sess := &hop{service: "loader", op: "loader.session", parent: loader}
	return append(hops, sess,
		&hop{service: "webgate", op: "frame", parent: web, count: 3},
		&hop{service: "loader", op: "loader.licence", parent: sess},
		&hop{service: "loader", op: "engine.create", parent: sess},
		&hop{service: "loader", op: "engine.write", parent: sess, count: 3})
}

// complete is a WaitTrace condition: the trace holds every hop's spans.
func complete(hops []*hop) func(*jaegertest.Trace) error {
	return func(tr *jaegertest.Trace) error {
		for _, h := range hops {
			if n := len(h.spans(tr)); n < h.want() {
				return fmt.Errorf("%d %s spans yet, want %d", n, h, h.want())
			}
		}
		return nil
	}
}

// checkTrace asserts the trace as Jaeger returns it: exactly the hops' spans, from the
// four services on the path (polaris is not on it), each under its parent, the root under
// rootParent ("" for none), and asf.sid on the spans that name the request.
func checkTrace(t *testing.T, tr *jaegertest.Trace, hops []*hop, rootParent, sid string) {
	t.Helper()
	if got, want := strings.Join(tr.Services(), ","), "atom,lbclient,loader,webgate"; got != want {
		t.Errorf("services %s, want %s\n%s", got, want, tr)
	}
	total := 0
	for _, h := range hops {
		spans := h.spans(tr)
		total += len(spans)
		if len(spans) != h.want() {
			t.Errorf("%d %s spans, want %d\n%s", len(spans), h, h.want(), tr)
		}
		for _, s := range spans {
			if h.parent == nil {
				if s.ParentID != rootParent {
					t.Errorf("%s has parent %q, want %q\n%s", h, s.ParentID, rootParent, tr)
				}
				continue
			}
			p := tr.Parent(s)
			if p == nil || !contains(h.parent.spans(tr), p) {
				t.Errorf("%s is not a child of %s\n%s", h, h.parent, tr)
			}
		}
		switch h.op {
		case "once", "session", "loader once", "loader session", "loader.session", "engine.once", "frame":
			for _, s := range spans {
				if s.Tags["asf.sid"] != sid {
					t.Errorf("%s: asf.sid = %q, want %q", h, s.Tags["asf.sid"], sid)
				}
			}
		}
	}
	if total != len(tr.Spans) {
		t.Errorf("%d spans in the trace, want the path's %d\n%s", len(tr.Spans), total, tr)
	}
	for _, s := range tr.Spans {
		if s.TraceID != tr.ID {
			t.Errorf("span %s of trace %s in trace %s", s.SpanID, s.TraceID, tr.ID)
		}
	}
}

func contains(spans []*jaegertest.Span, s *jaegertest.Span) bool {
	for _, c := range spans {
		if c.SpanID == s.SpanID {
			return true
		}
	}
	return false
}

func onceFrame(text string) asetest.Frame {
	return asetest.Frame{Payload: map[string]asetest.Data{"input": asetest.Text(text)}}
}

// TestTracesInJaeger runs the suite against one Jaeger and reads every request's trace
// back from its query API.
func TestTracesInJaeger(t *testing.T) {
	j := jaegertest.Start(t)
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, TraceEndpoint: j.Endpoint()})

	t.Run("once", func(t *testing.T) {
		resp, err := s.Client().Once(t.Context(), "echo", onceFrame("hello"))
		if err != nil || resp.Header.Code != 0 {
			t.Fatalf("once: %v %+v", err, resp)
		}
		id := resp.HTTPHeader.Get("X-Asf-Trace-Id")
		if len(id) != 32 {
			t.Fatalf("X-Asf-Trace-Id = %q, want a trace id", id)
		}
		if tr := resp.HTTPHeader.Get("Traceresponse"); !strings.HasPrefix(tr, "00-"+id+"-") || !strings.HasSuffix(tr, "-01") {
			t.Errorf("traceresponse %q does not name sampled trace %s", tr, id)
		}
		hops := path(false)
		tr := j.WaitTrace(t, id, traceWait, complete(hops))
		checkTrace(t, tr, hops, "", resp.Header.Sid)
		att := find(hops, "atom", "loader once").spans(tr)[0]
		if att.Tags["asf.attempt"] != "1" || att.Tags["asf.retry"] != "false" || att.Tags["asf.loader"] != s.Loaders[0].GRPCAddr() {
			t.Errorf("attempt tags %v, want the first attempt on %s", att.Tags, s.Loaders[0].GRPCAddr())
		}
		if w := find(hops, "webgate", "once").spans(tr)[0]; w.Tags["asf.capability"] != "echo" {
			t.Errorf("webgate span tags %v, want asf.capability echo", w.Tags)
		}
	})

	t.Run("three-frame session", func(t *testing.T) {
		ss, err := s.Client().Stream(t.Context(), "echo")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ss.Close() }()
		id := ss.Header.Get("X-Asf-Trace-Id")
		if len(id) != 32 {
			t.Fatalf("handshake X-Asf-Trace-Id = %q, want a trace id", id)
		}
		for i, st := range []int{0, 1, 2} {
			f := asetest.Frame{Status: st, Seq: asetest.Int(i), OnlyPayload: i > 0, Payload: map[string]asetest.Data{"input": asetest.Audio([]byte{1, 2, 3, 4})}}
			if err := ss.Send(f); err != nil {
				t.Fatal(err)
			}
		}
		res, err := ss.RecvUntilEnd(5 * time.Second)
		if err != nil || len(res) == 0 {
			t.Fatalf("session: %v (%d results)", err, len(res))
		}
		_ = ss.Close()
		hops := path(true)
		tr := j.WaitTrace(t, id, traceWait, complete(hops))
		checkTrace(t, tr, hops, "", res[0].Header.Sid)
		frames := map[string]bool{}
		for _, f := range find(hops, "webgate", "frame").spans(tr) { // rate 1: every frame
			frames[f.Tags["asf.frame"]] = true
		}
		if !frames["1"] || !frames["2"] || !frames["3"] {
			t.Errorf("frame spans numbered %v, want 1, 2 and 3", frames)
		}
	})

	// An OIP model-ready probe is the request that asks polaris: webgate's lookup is a
	// client span whose context reaches polaris, whose server span joins the trace. (A once
	// request or a session never asks polaris: the registry reaches lbclient by watch.)
	t.Run("OIP model ready reaches polaris", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/v2/models/echo/ready", nil)
		if err != nil {
			t.Fatal(err)
		}
		asetest.SignHeaders(req, nil, suitetest.DemoApp, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("ready: HTTP %d", resp.StatusCode)
		}
		id := resp.Header.Get("X-Asf-Trace-Id")
		web := &hop{service: "webgate", op: "oip ready", kind: "server"}
		lookup := &hop{service: "webgate", op: "polaris list", kind: "client", parent: web}
		pol := &hop{service: "polaris", op: "asf.polaris.v1.Registry/List", kind: "server", parent: lookup}
		hops := []*hop{web, lookup, pol}
		tr := j.WaitTrace(t, id, traceWait, complete(hops))
		if got := strings.Join(tr.Services(), ","); got != "polaris,webgate" {
			t.Errorf("services %s, want polaris,webgate\n%s", got, tr)
		}
		for _, h := range hops[1:] {
			for _, sp := range h.spans(tr) {
				if p := tr.Parent(sp); p == nil || !contains(h.parent.spans(tr), p) {
					t.Errorf("%s is not a child of %s\n%s", h, h.parent, tr)
				}
			}
		}
		if len(tr.Spans) != len(hops) {
			t.Errorf("%d spans, want %d\n%s", len(tr.Spans), len(hops), tr)
		}
	})

	// A client's traceparent gives the trace id and the parent of webgate's span; its
	// sampled flag does not decide (webgate's rate 1 does), so "-00" is recorded too.
	for _, flags := range []string{"01", "00"} {
		t.Run("client traceparent "+flags, func(t *testing.T) {
			traceID, parentID := "4bf92f3577b34da6a3ce929d0e0e47a"+flags[1:], "00f067aa0ba902b7" // a trace per case
			cl := s.Client()
			cl.RequestHeader = http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-" + flags}}
			resp, err := cl.Once(t.Context(), "echo", onceFrame("hi"))
			if err != nil || resp.Header.Code != 0 {
				t.Fatalf("once: %v %+v", err, resp)
			}
			if got := resp.HTTPHeader.Get("X-Asf-Trace-Id"); got != traceID {
				t.Fatalf("X-Asf-Trace-Id = %q, want the client's trace %s", got, traceID)
			}
			hops := path(false)
			tr := j.WaitTrace(t, traceID, traceWait, complete(hops))
			checkTrace(t, tr, hops, parentID, resp.Header.Sid)
		})
	}
}
