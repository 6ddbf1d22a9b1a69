package ws

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/gorilla/websocket"
)

// Frames that arrive while the session's first frame still opens its stream wait behind
// it; the ones after go to atom from the reader. Either way atom gets every frame, and the
// client every result, in order.
func TestFramesBehindTheFirstKeepOrder(t *testing.T) {
	atom := &memAtom{open: make(chan struct{})}
	h := startHarness(t, atom, 10*time.Second)
	conn := h.dial(t, "")
	const n = 60
	for i := range n {
		status := 1
		if i == 0 {
			status = 0
		}
		if err := conn.WriteMessage(websocket.TextMessage, testFrame("", status, i)); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			close(atom.open) // half of the frames arrive before the stream is open
		}
	}
	for i := range n {
		r := readResult(t, conn)
		if r.Header.Code != 0 || r.Payload.Result.Text.Seq != i {
			t.Fatalf("result %d: code %d %q, seq %d", i, r.Header.Code, r.Header.Message, r.Payload.Result.Text.Seq)
		}
	}
	if err := conn.WriteMessage(websocket.TextMessage, testFrame("", 2, n)); err != nil {
		t.Fatal(err)
	}
	if r := readResult(t, conn); r.Header.Status == nil || *r.Header.Status != 2 || r.Payload.Result.Text.Seq != n {
		t.Fatalf("last result %+v", r)
	}
	if ce := drainClose(t, conn); ce == nil || ce.Code != websocket.CloseNormalClosure {
		t.Errorf("close %v, want a normal closure", ce)
	}
	want := make([]int, n+1)
	for i := range want {
		want[i] = i
	}
	if got := atom.received(""); !slices.Equal(got, want) {
		t.Errorf("atom received seq %v, want %v", got, want)
	}
}

// Results of several sub-sessions released at once each reach the client whole and in
// their sub-session's order.
func TestMultiplexBurstResultsKeepOrder(t *testing.T) {
	atom := &memAtom{release: make(chan struct{})}
	h := startHarness(t, atom, 10*time.Second)
	conn := h.dial(t, "?stream_mode=multiplex")
	const cids, frames = 8, 12
	for i := range frames {
		for c := range cids {
			status := 1
			if i == 0 {
				status = 0
			}
			if err := conn.WriteMessage(websocket.TextMessage, testFrame("c"+strconv.Itoa(c), status, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	testpoll.Until(t, 10*time.Second, "every frame at atom", func() bool {
		for c := range cids {
			if len(atom.received("c"+strconv.Itoa(c))) != frames {
				return false
			}
		}
		return true
	})
	before := h.lis.writes.Load()
	close(atom.release)
	next := map[string]int{}
	for range cids * frames {
		r := readResult(t, conn)
		if r.Header.Code != 0 {
			t.Fatalf("cid %s: code %d %q", r.Header.Cid, r.Header.Code, r.Header.Message)
		}
		if r.Payload.Result.Text.Seq != next[r.Header.Cid] {
			t.Fatalf("cid %s: seq %d, want %d", r.Header.Cid, r.Payload.Result.Text.Seq, next[r.Header.Cid])
		}
		next[r.Header.Cid]++
	}
	t.Logf("%d results in %d writes", cids*frames, h.lis.writes.Load()-before)
	for c := range cids {
		cid := "c" + strconv.Itoa(c)
		if err := conn.WriteMessage(websocket.TextMessage, testFrame(cid, 2, frames)); err != nil {
			t.Fatal(err)
		}
		if r := readResult(t, conn); r.Header.Cid != cid || r.Header.Status == nil || *r.Header.Status != 2 {
			t.Fatalf("last result of %s: %+v", cid, r)
		}
	}
}

// The read timeout runs from the session's last activity, not from its start or from the
// timer's last arming: a session with a frame and result every tenth of the timeout lives
// on, and one left alone ends with 10200 a full timeout after its last result.
func TestReadTimeoutFromLastActivity(t *testing.T) {
	const readTO = 600 * time.Millisecond
	h := startHarness(t, &memAtom{}, readTO)
	conn := h.dial(t, "")
	var last time.Time
	tick := time.NewTicker(readTO / 10)
	defer tick.Stop()
	for i := range 25 { // 2.5 read timeouts
		status := 1
		if i == 0 {
			status = 0
		}
		if err := conn.WriteMessage(websocket.TextMessage, testFrame("", status, i)); err != nil {
			t.Fatal(err)
		}
		if r := readResult(t, conn); r.Header.Code != 0 {
			t.Fatalf("frame %d: code %d %q", i, r.Header.Code, r.Header.Message)
		}
		last = time.Now()
		<-tick.C
	}
	r := readResult(t, conn)
	if r.Header.Code != aserr.ErrReadTimeout.Code {
		t.Fatalf("code %d %q, want %d", r.Header.Code, r.Header.Message, aserr.ErrReadTimeout.Code)
	}
	if idle := time.Since(last); idle < readTO-readTO/10 {
		t.Errorf("read timeout after %v of silence, want %v", idle, readTO)
	}
	if ce := drainClose(t, conn); ce == nil || ce.Code != websocket.CloseNormalClosure {
		t.Errorf("close %v, want a normal closure", ce)
	}
}
