// Package tracing tests traces across the whole suite: every service exports to one
// OTLP receiver, and a once request and a three-frame session each give one trace with
// the spans of every service on the request path, parented hop by hop.
package tracing

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
)

func find(spans []span, service, name string) *span {
	for i, s := range spans {
		if s.Service == service && (name == "" || s.Name == name) {
			return &spans[i]
		}
	}
	return nil
}

func parent(spans []span, s *span) *span {
	for i, p := range spans {
		if s.ParentID != "" && p.SpanID == s.ParentID {
			return &spans[i]
		}
	}
	return nil
}

func dump(spans []span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n  %-9s %-36s span %s parent %s", s.Service, s.Name, s.SpanID, s.ParentID)
	}
	return b.String()
}

// ancestor reports whether a is an ancestor of s in spans.
func ancestor(spans []span, a, s *span) bool {
	for p := parent(spans, s); p != nil; p = parent(spans, p) {
		if p.SpanID == a.SpanID {
			return true
		}
	}
	return false
}

// waitTrace waits until the trace holds the spans the path needs.
func waitTrace(t *testing.T, c *collector, id string, want map[string]string) []span {
	t.Helper()
	var got []span
	testpoll.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		got = c.trace(id)
		for svc, name := range want {
			if find(got, svc, name) == nil {
				return fmt.Errorf("no %s span %q yet in trace %s:%s", svc, name, id, dump(got))
			}
		}
		return nil
	})
	return got
}

// checkPath asserts the hop order webgate → atom → (pick → lbclient pick) and
// (loader attempt → loader), and the sid on webgate's span.
func checkPath(t *testing.T, spans []span, root, attempt, sid string) {
	t.Helper()
	w := find(spans, "webgate", root)
	if got := w.Attrs["asf.sid"]; got != sid {
		t.Errorf("webgate span asf.sid = %q, want %q", got, sid)
	}
	server := find(spans, "atom", "")
	for _, s := range spans {
		if s.Service == "atom" && strings.HasPrefix(s.Name, "asf.atom.v1.Atom/") {
			server = &s
			break
		}
	}
	pick := find(spans, "atom", "pick")
	lbPick := find(spans, "lbclient", "pick")
	att := find(spans, "atom", attempt)
	var ld *span
	for i, s := range spans {
		if s.Service == "loader" && strings.HasPrefix(s.Name, "asf.loader.v1.Loader/") {
			ld = &spans[i]
		}
	}
	for _, c := range []struct {
		what        string
		anc, target *span
	}{
		{"webgate → atom call", w, server},
		{"atom call → pick", server, pick},
		{"pick → lbclient pick", pick, lbPick},
		{"atom call → loader attempt", server, att},
		{"loader attempt → loader call", att, ld},
	} {
		if c.anc == nil || c.target == nil {
			t.Errorf("%s: span missing:%s", c.what, dump(spans))
			continue
		}
		if !ancestor(spans, c.anc, c.target) {
			t.Errorf("%s: %s %q is not under %s %q:%s", c.what, c.target.Service, c.target.Name, c.anc.Service, c.anc.Name, dump(spans))
		}
	}
}

func TestOnceRequestIsOneTrace(t *testing.T) {
	col := startCollector(t)
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, TraceEndpoint: col.addr})
	cl := s.Client()
	resp, err := cl.Once(t.Context(), "echo", asetest.Frame{Payload: map[string]asetest.Data{"input": asetest.Text("hello")}})
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
	spans := waitTrace(t, col, id, map[string]string{"webgate": "once", "atom": "loader once", "lbclient": "pick", "loader": ""})
	checkPath(t, spans, "once", "loader once", resp.Header.Sid)
}

func TestClientTraceparentIsHonoured(t *testing.T) {
	col := startCollector(t)
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, TraceEndpoint: col.addr})
	cl := s.Client()
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cl.RequestHeader = http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}}
	resp, err := cl.Once(t.Context(), "echo", asetest.Frame{Payload: map[string]asetest.Data{"input": asetest.Text("hi")}})
	if err != nil || resp.Header.Code != 0 {
		t.Fatalf("once: %v %+v", err, resp)
	}
	if got := resp.HTTPHeader.Get("X-Asf-Trace-Id"); got != traceID {
		t.Fatalf("X-Asf-Trace-Id = %q, want the client's trace %s", got, traceID)
	}
	spans := waitTrace(t, col, traceID, map[string]string{"webgate": "once", "loader": ""})
	if w := find(spans, "webgate", "once"); w.ParentID != parentID {
		t.Errorf("webgate span's parent = %q, want the client's span %s", w.ParentID, parentID)
	}
}

func TestThreeFrameSessionIsOneTrace(t *testing.T) {
	col := startCollector(t)
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, TraceEndpoint: col.addr})
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
	sid := res[0].Header.Sid
	_ = ss.Close()
	spans := waitTrace(t, col, id, map[string]string{"webgate": "session", "atom": "loader session", "lbclient": "pick", "loader": ""})
	checkPath(t, spans, "session", "loader session", sid)
	frames := 0
	sess := find(spans, "webgate", "session")
	for i, sp := range spans {
		if sp.Service == "webgate" && sp.Name == "frame" {
			frames++
			if p := parent(spans, &spans[i]); p == nil || p.SpanID != sess.SpanID {
				t.Errorf("frame span is not a child of the session span:%s", dump(spans))
			}
		}
	}
	if frames != 3 { // rate 1: every frame
		t.Errorf("%d frame spans, want 3:%s", frames, dump(spans))
	}
}
