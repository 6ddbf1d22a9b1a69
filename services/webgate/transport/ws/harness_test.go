package ws

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// memAtom is an in-memory atom for the tests of this package: every stream answers each
// frame with a result of the frame's status and payload seq, in order. A stream opens
// only when open is closed (nil: at once); release, when set, paces the results: one
// result goes out per value received.
type memAtom struct {
	open    chan struct{}
	release chan struct{}

	mu     sync.Mutex
	frames map[string][]int // seq of the frames each stream received, by its first frame's cid
}

func (a *memAtom) Call(context.Context, *atompb.Frame) (*atompb.Result, error) {
	return nil, errors.New("memAtom: no once calls")
}

func (a *memAtom) Stream(ctx context.Context) (gate.Stream, error) {
	if a.open != nil {
		select {
		case <-a.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &memStream{a: a, ctx: ctx, out: make(chan *atompb.Result, 1024)}, nil
}

func (a *memAtom) received(cid string) []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.frames[cid]...)
}

type memStream struct {
	a     *memAtom
	ctx   context.Context
	out   chan *atompb.Result
	cid   string // header.cid of the first frame (later frames carry only what changed)
	first bool
}

func (s *memStream) Send(f *atompb.Frame) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	seq := "0"
	if len(f.GetPayload()) > 0 {
		seq = f.GetPayload()[0].GetAttributes()["seq"]
	}
	n, _ := strconv.Atoi(seq)
	s.a.mu.Lock()
	if s.a.frames == nil {
		s.a.frames = map[string][]int{}
	}
	if !s.first {
		s.first, s.cid = true, f.GetHeader()["cid"]
	}
	s.a.frames[s.cid] = append(s.a.frames[s.cid], n)
	s.a.mu.Unlock()
	s.out <- &atompb.Result{Sid: f.GetSid(), Status: f.GetStatus(), Payload: []*atompb.Item{{
		Name: "result", DataType: "text", Attributes: map[string]string{"format": "json"},
		Data: []byte(`{"seq":` + seq + `}`),
	}}}
	return nil
}

func (s *memStream) Recv() (*atompb.Result, error) {
	var res *atompb.Result
	select {
	case res = <-s.out:
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
	if s.a.release != nil {
		select {
		case <-s.a.release:
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		}
	}
	return res, nil
}

func (s *memStream) CloseSend() error { return nil }

// countConn counts the writes on a server-side socket.
type countConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

type countListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countConn{Conn: c, writes: &l.writes}, nil
}

// harness is a Server of a gate on memAtom behind a test HTTP server; every request is a
// session of capability "echo" without a schema, multiplexed with ?stream_mode=multiplex.
type harness struct {
	atom *memAtom
	g    *gate.Gate
	srv  *Server
	http *httptest.Server
	lis  *countListener
}

func startHarness(t *testing.T, atom *memAtom, readTimeout time.Duration) *harness {
	t.Helper()
	g, err := gate.New(atom, gate.Options{ReadTimeout: readTimeout, SessionTimeout: time.Minute, SIDs: ase.NewSIDGen("ts", "127.0.0.1:1")},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{atom: atom, g: g, srv: New(g, Options{MaxFrameBytes: 1 << 20})}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.lis = &countListener{Listener: lis}
	h.http = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := g.NewRequest("echo", nil)
		req.Stream = true
		req.Multiplex = r.URL.Query().Get("stream_mode") == "multiplex"
		h.srv.Serve(w, r, req)
	}))
	h.http.Listener = h.lis
	h.http.Start()
	t.Cleanup(h.http.Close)
	return h
}

func (h *harness) dial(t *testing.T, query string) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.http.URL, "http")+"/"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// testFrame is a client frame of sub-session cid ("": none) with status and seq.
func testFrame(cid string, status, seq int) []byte {
	h := `{"app_id":"app1","status":` + strconv.Itoa(status)
	if cid != "" {
		h += `,"cid":"` + cid + `"`
	}
	return []byte(`{"header":` + h + `},"payload":{"input":{"encoding":"raw","status":` + strconv.Itoa(status) +
		`,"seq":` + strconv.Itoa(seq) + `,"audio":"AAEC"}}}`)
}

type testResult struct {
	Header struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Cid     string `json:"cid"`
		Status  *int   `json:"status"`
	} `json:"header"`
	Payload struct {
		Result struct {
			Text struct {
				Seq int `json:"seq"`
			} `json:"text"`
		} `json:"result"`
	} `json:"payload"`
}

func readResult(t *testing.T, conn *websocket.Conn) testResult {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var r testResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("result %q: %v", b, err)
	}
	return r
}

// drainClose reads until the server closes the socket and returns its close error.
func drainClose(t *testing.T, conn *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			t.Fatalf("read before the close frame: %v", err)
		}
	}
}
