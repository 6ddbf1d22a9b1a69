package transport

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// benchFrame is a typical streaming frame: 40 ms of 16 kHz 16-bit PCM.
func benchFrame(status int) []byte {
	audio := base64.StdEncoding.EncodeToString(make([]byte, 1280))
	return []byte(`{"header":{"app_id":"app1","status":` + strconv.Itoa(status) + `},"payload":{"input":{"encoding":"raw","status":` +
		strconv.Itoa(status) + `,"seq":1,"text":"` + audio + `"}}}`)
}

// benchLog is the gate's logger in benchmarks: info, the production level, to nowhere.
var benchLog = zerolog.New(io.Discard).Level(zerolog.InfoLevel)

// echoSchemas is a registry holding the echo capability's schema of the compose deployment.
func echoSchemas(b *testing.B) *capability.Registry {
	sch, err := os.ReadFile("../../../deploy/compose/config/asf/default/capabilities/v1/schema_echo.json")
	if err != nil {
		b.Skip("echo schema not found:", err)
	}
	reg := capability.NewRegistry()
	if _, err := reg.Put("schema_echo.json", 1, sch); err != nil {
		b.Fatal(err)
	}
	return reg
}

// BenchmarkWebSocketFrame measures one frame round trip (client → webgate → fake atom →
// webgate → client) of a long WebSocket session through the real handler and a real gRPC
// connection; b.N frames share one session.
func BenchmarkWebSocketFrame(b *testing.B) {
	reg := echoSchemas(b)
	g := startGateLogged(b, &fakeAtom{}, &fakeAtom{}, func(o *Options) { o.Schemas = reg }, benchLog)
	url := "ws" + strings.TrimPrefix(g.srv.URL, "http") + "/v1/private/echo"
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	_ = resp.Body.Close()
	defer conn.Close()
	first := []byte(frame(0, 0))
	later := benchFrame(1)
	if err := conn.WriteMessage(websocket.TextMessage, first); err != nil {
		b.Fatal(err)
	}
	if _, _, err := conn.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(later)))
	b.ReportAllocs()
	for b.Loop() {
		if err := conn.WriteMessage(websocket.TextMessage, later); err != nil {
			b.Fatal(err)
		}
		if _, _, err := conn.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = conn.WriteMessage(websocket.TextMessage, []byte(frame(2, 2)))
	_, _, _ = conn.ReadMessage()
}

// echoAtom answers every once call with the frame's payload, as the echo engine does,
// at the least cost an atom can have, so a benchmark measures webgate.
type echoAtom struct {
	atompb.UnimplementedAtomServer
}

func (echoAtom) Call(_ context.Context, fr *atompb.Frame) (*atompb.Result, error) {
	return &atompb.Result{Sid: fr.GetSid(), Status: 3, Payload: fr.GetPayload(),
		Timing: map[string]int64{"atom_ns": 5000, "loader_ns": 4000, "engine_ns": 3000}}, nil
}

// Stream echoes every frame's payload as a result of the frame's status, as the echo engine
// does, and ends the stream after the last frame.
func (echoAtom) Stream(ss atompb.Atom_StreamServer) error {
	for {
		fr, err := ss.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				<-ss.Context().Done()
			}
			return err
		}
		if err := ss.Send(&atompb.Result{Sid: fr.GetSid(), Status: fr.GetStatus(), Payload: fr.GetPayload()}); err != nil {
			return err
		}
		if fr.GetStatus() == 2 {
			return nil
		}
	}
}

// BenchmarkOnce measures one once request (client → webgate's HTTP handler → atom over
// gRPC → webgate → client) of the echo capability with its schema and 1 KB of text, as
// the suite's once scenario sends it; the client reuses its connection.
//
// The traced cases run webgate with tracing on (spans to an in-memory exporter) at the
// given sample rate: "traced-0" is what every unsampled request of a traced suite costs
// webgate beyond "untraced".
func BenchmarkOnce(b *testing.B) {
	b.Run("untraced", func(b *testing.B) { benchOnce(b, nil, 0) })
	b.Run("webapi", benchOnceWebAPI)
	for _, rate := range []float64{0, 0.01} {
		b.Run("traced-"+strconv.FormatFloat(rate, 'g', -1, 64), func(b *testing.B) {
			tp, err := tracing.New(tracing.Config{}, "webgate", tracing.Options{Edge: true, Root: tracing.RateSampler(rate),
				Exporter: tracetest.NewInMemoryExporter()})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = tp.Shutdown(context.Background()) }()
			benchOnce(b, tp, rate)
		})
	}
}

func benchOnce(b *testing.B, tp *tracing.Provider, rate float64) {
	reg := echoSchemas(b)
	g := startGateLogged(b, &fakeAtom{}, echoAtom{}, func(o *Options) {
		o.Schemas, o.Tracing, o.TraceSampleRate = reg, tp, rate
	}, benchLog)
	body := []byte(`{"header":{"app_id":"app1","status":3},"parameter":{"echo":{}},"payload":{"input":{"encoding":"utf8","status":3,"text":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("athena "), 150)) + `"}}}`)
	benchPost(b, g.srv.URL+"/v1/private/echo", body, func([]byte) bool { return true })
}

// benchOnceWebAPI is benchOnce's request in iFLYTEK's WebAPI 2.0 envelope on the
// capability's WebAPI 2.0 route, with the echo schema of the suite's WebAPI 2.0 once rows
// (a route and its mappings, no validation: tools/asfbench/scenario/webapi.go).
func benchOnceWebAPI(b *testing.B) {
	sch, err := os.ReadFile("webapi/testdata/bench_echo_schema.json")
	if err != nil {
		b.Fatal(err)
	}
	reg := capability.NewRegistry()
	if _, err := reg.Put("echo.json", 1, sch); err != nil {
		b.Fatal(err)
	}
	g := startGateLogged(b, &fakeAtom{}, echoAtom{}, func(o *Options) { o.Schemas = reg }, benchLog)
	body := []byte(`{"business":{},"common":{"app_id":"app1"},"data":{"status":2,"text":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("athena "), 150)) + `"}}`)
	benchPost(b, g.srv.URL+"/v2/echo", body, func(resp []byte) bool { return bytes.Contains(resp, []byte(`"code":0`)) })
}

// benchPost posts body to url b.N times on reused connections; every answer must be 200
// and pass ok.
func benchPost(b *testing.B, url string, body []byte, ok func([]byte) bool) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	var rd bytes.Reader
	buf := make([]byte, 0, 8192)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		resp, err := client.Post(url, "application/json", &rd)
		if err != nil {
			b.Fatal(err)
		}
		buf, err = readAll(resp.Body, buf[:0])
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !ok(buf) {
			b.Fatalf("status %d, err %v: %s", resp.StatusCode, err, buf)
		}
	}
}

func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Many-sessions benchmark: wsSessions WebSocket sessions each send a frame of benchFrame
// every wsPeriod (staggered; scenario 2 of the suite sends one every 40 ms) and wait for
// its result; b.N frames in all. Multiplexed, wsPerSocket sessions share a socket.
const (
	wsSessions  = 200
	wsPeriod    = 40 * time.Millisecond
	wsPerSocket = 10
)

// BenchmarkWebSocketSessions measures the per-frame cost of many concurrent sessions. The
// webgate cases run webgate's handler with the echo schema against an atom that echoes the
// payload over a real gRPC connection, one session per socket or multiplexed; the bare
// cases are a plain gorilla WebSocket echo serving the same clients, the floor of what the
// clients and the sockets cost. Each reports the process's CPU time per frame (clients,
// webgate and atom together: getrusage), its allocations per frame and the p50 and p99
// frame-to-result latency.
func BenchmarkWebSocketSessions(b *testing.B) {
	for _, mux := range []bool{false, true} {
		name := ""
		if mux {
			name = "-mux"
		}
		b.Run("webgate"+name, func(b *testing.B) {
			reg := echoSchemas(b)
			g := startGateLogged(b, &fakeAtom{}, echoAtom{}, func(o *Options) { o.Schemas = reg }, benchLog)
			benchSessions(b, "ws"+strings.TrimPrefix(g.srv.URL, "http")+"/v1/private/echo", mux)
		})
		b.Run("bare"+name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(bareEcho))
			defer srv.Close()
			benchSessions(b, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", mux)
		})
	}
}

// bareEcho is a WebSocket echo with no work per message beyond reading and writing it.
func bareEcho(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if err := conn.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

// benchSocket is the client side of one socket of benchSessions. Multiplexed, its reader
// hands each result to the session of its header.cid.
type benchSocket struct {
	conn    *websocket.Conn
	wmu     sync.Mutex
	results map[string]chan error // by cid; multiplexed only
}

func (s *benchSocket) send(msg []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.conn.WriteMessage(websocket.TextMessage, msg)
}

// readMux reads the socket's results until it fails, handing each to its session.
func (s *benchSocket) readMux() {
	for {
		_, msg, err := s.conn.ReadMessage()
		if err != nil {
			for _, ch := range s.results {
				select {
				case ch <- err:
				default:
				}
			}
			return
		}
		cid := msg
		if i := bytes.Index(cid, []byte(`"cid":"`)); i >= 0 {
			cid = cid[i+7:]
			cid = cid[:bytes.IndexByte(cid, '"')]
		}
		if ch := s.results[string(cid)]; ch != nil {
			ch <- nil
		}
	}
}

// benchFrameCID is benchFrame of sub-session cid ("": none); first: the session's first.
func benchFrameCID(cid string, status int) []byte {
	f := benchFrame(status)
	if status == 0 {
		f = []byte(frame(0, 0))
	}
	if cid == "" {
		return f
	}
	return bytes.Replace(f, []byte(`"app_id":"app1"`), []byte(`"app_id":"app1","cid":"`+cid+`"`), 1)
}

// benchSessions runs the sessions against url, multiplexed or not (see
// BenchmarkWebSocketSessions).
func benchSessions(b *testing.B, url string, mux bool) {
	perSocket := 1
	if mux {
		perSocket = wsPerSocket
		url += "?stream_mode=multiplex"
	}
	type session struct {
		sock *benchSocket
		cid  string
		res  chan error
		next []byte
	}
	sessions := make([]session, 0, wsSessions)
	var readers sync.WaitGroup
	for len(sessions) < wsSessions {
		conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		sock := &benchSocket{conn: conn, results: map[string]chan error{}}
		for i := 0; i < perSocket && len(sessions) < wsSessions; i++ {
			ss := session{sock: sock}
			if mux {
				ss.cid = "c" + strconv.Itoa(i)
				ss.res = make(chan error, 1)
				sock.results[ss.cid] = ss.res
			}
			ss.next = benchFrameCID(ss.cid, 1)
			sessions = append(sessions, ss)
		}
		if mux {
			readers.Add(1)
			go func() { defer readers.Done(); sock.readMux() }()
		}
	}
	defer func() {
		for _, ss := range sessions {
			_ = ss.sock.conn.Close()
		}
		readers.Wait()
	}()
	// roundTrip sends msg on session ss and waits for its result.
	roundTrip := func(ss session, msg []byte) error {
		if err := ss.sock.send(msg); err != nil {
			return err
		}
		if ss.res != nil {
			return <-ss.res
		}
		_, _, err := ss.sock.conn.ReadMessage()
		return err
	}
	for _, ss := range sessions {
		if err := roundTrip(ss, benchFrameCID(ss.cid, 0)); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([][]time.Duration, len(sessions))
	var tickets atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.SetBytes(int64(len(sessions[0].next)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for i, ss := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start.Add(time.Duration(i) * wsPeriod / time.Duration(len(sessions)))
			for tickets.Add(1) <= int64(b.N) && failed.Load() == nil {
				if d := time.Until(next); d > 0 {
					time.Sleep(d) // the client's pace, not synchronisation
				}
				next = next.Add(wsPeriod)
				t0 := time.Now()
				if err := roundTrip(ss, ss.next); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1e3, "cpu-µs/frame")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1e3, "p99-ms")
	for _, ss := range sessions {
		_ = roundTrip(ss, benchFrameCID(ss.cid, 2))
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
