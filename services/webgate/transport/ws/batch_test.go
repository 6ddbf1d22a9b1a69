package ws

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// batchPair is a multiplexed connection's server side (a wsConn writing through a
// batchConn, no reader) and its client.
func batchPair(t *testing.T) (*wsConn, *websocket.Conn, *countListener) {
	t.Helper()
	g, err := gate.New(&memAtom{}, gate.Options{ReadTimeout: time.Minute, SessionTimeout: time.Minute, SIDs: ase.NewSIDGen("ts", "127.0.0.1:1")},
		zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	conns := make(chan *wsConn, 1)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bw := &batchWriter{ResponseWriter: w, hj: w.(http.Hijacker)}
		conn, err := up.Upgrade(bw, r, nil)
		if err != nil {
			t.Error(err)
			close(conns)
			return
		}
		req := g.NewRequest("echo", nil)
		req.Stream, req.Multiplex = true, true
		conns <- &wsConn{h: &Server{g: g}, conn: conn, info: req, batch: bw.conn, yield: runtime.Gosched}
	}))
	lis := &countListener{Listener: hs.Listener}
	hs.Listener = lis
	hs.Start()
	t.Cleanup(hs.Close)
	client, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = client.Close() })
	c := <-conns
	if c == nil {
		t.FailNow()
	}
	t.Cleanup(func() { _ = c.conn.Close() })
	return c, client, lis
}

// writersPaused makes c's writers pause where they yield: every one has added its
// message to the batch once n have signalled on the returned channel; they go on when
// proceed closes.
func writersPaused(c *wsConn, n int) (paused <-chan struct{}, proceed chan struct{}) {
	p := make(chan struct{}, n)
	proceed = make(chan struct{})
	c.live.Store(int32(n))
	c.yield = func() {
		p <- struct{}{}
		<-proceed
	}
	return p, proceed
}

// The messages of writers that run together go out in one write, each whole.
func TestBatchedWritesShareOneWrite(t *testing.T) {
	c, client, lis := batchPair(t)
	const n = 8
	msg := func(i int) string { return `{"n":` + strconv.Itoa(i) + `,"pad":"` + strings.Repeat("x", 100*i) + `"}` }
	paused, proceed := writersPaused(c, n)
	before := lis.writes.Load()
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- c.write([]byte(msg(i))) }()
	}
	for range n {
		<-paused
	}
	if w := lis.writes.Load() - before; w != 0 {
		t.Fatalf("%d writes before any writer went on", w)
	}
	close(proceed)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if w := lis.writes.Load() - before; w != 1 {
		t.Errorf("%d messages in %d writes, want 1", n, w)
	}
	var got, want []string
	for i := range n {
		want = append(want, msg(i))
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := client.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("messages %q, want %q", got, want)
	}
}

// A control frame written while a batch is open joins it, in order.
func TestBatchTakesControlFrames(t *testing.T) {
	c, client, lis := batchPair(t)
	pings := make(chan string, 1)
	client.SetPingHandler(func(data string) error { pings <- data; return nil })
	before := lis.writes.Load()
	c.batch.hold()
	if err := c.conn.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if w := lis.writes.Load() - before; w != 0 {
		t.Fatalf("the ping was written (%d writes) while the batch was open", w)
	}
	if err := c.write([]byte(`{"after":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if w := lis.writes.Load() - before; w != 1 {
		t.Errorf("ping and message in %d writes, want 1", w)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := client.ReadMessage() // handles the ping first
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"after":"ping"}` {
		t.Errorf("message %q", b)
	}
	select {
	case p := <-pings:
		if p != "p1" {
			t.Errorf("ping %q", p)
		}
	default:
		t.Error("the ping did not arrive before the message")
	}
}

// A failed batch write fails every writer whose message it carried, and every later
// write of the connection, without writing.
func TestBatchWriteFailureSticks(t *testing.T) {
	c, _, lis := batchPair(t)
	paused, proceed := writersPaused(c, 2)
	errs := make(chan error, 2)
	for i := range 2 {
		go func() { errs <- c.write([]byte(`{"a":` + strconv.Itoa(i) + `}`)) }()
	}
	<-paused
	<-paused
	_ = c.batch.Conn.Close()
	close(proceed)
	err := <-errs
	if err == nil {
		t.Fatal("a write on a closed socket succeeded")
	}
	if err2 := <-errs; err2 != err {
		t.Errorf("the other writer of the batch: %v, want %v", err2, err)
	}
	before := lis.writes.Load()
	if err3 := c.write([]byte(`{"a":2}`)); err3 != err {
		t.Errorf("a later write: %v, want the failure %v", err3, err)
	}
	if w := lis.writes.Load() - before; w != 0 {
		t.Errorf("%d writes after the failure", w)
	}
}
