package chaos

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/asfbench/targets"
	"github.com/gorilla/websocket"
)

// Op is one once request or one streaming session of the load, as the client saw it.
type Op struct {
	Stream     bool
	Start, End time.Time
	// Err is empty for a success: a once answer with code 0, or a session that got every
	// result up to its last one.
	Err string
	// Bad marks a session that ended neither with its results nor with exactly one error
	// frame (the socket dropped silently, or more than one error frame came).
	Bad bool
}

// Failed reports whether the op did not succeed.
func (o Op) Failed() bool { return o.Err != "" }

// Load is steady once and stream load against webgate: OnceWorkers loops of signed once
// requests and StreamWorkers loops of WebSocket sessions, recording every op.
type Load struct {
	URL           string // webgate base URL
	Service       string
	App           asfbench.Credentials
	AppID         string
	OnceWorkers   int
	StreamWorkers int
	// Frames per session and the pause between frames, so that sessions are in flight at
	// any moment.
	Frames   int
	FrameGap time.Duration

	mu       sync.Mutex
	ops      []Op
	inFlight [2]atomic.Int64 // once, stream
	wg       sync.WaitGroup
	cancel   context.CancelFunc
}

// Start runs the workers until Stop.
func (l *Load) Start(ctx context.Context) {
	ctx, l.cancel = context.WithCancel(ctx)
	once := targets.NewASEOnce(targets.ASEOnceConfig{BaseURL: l.URL, Service: l.Service, AppID: l.AppID, Creds: l.App,
		PayloadSize: 64, MaxConns: l.OnceWorkers})
	for range l.OnceWorkers {
		d, _ := once.NewDoer(ctx, 0)
		l.wg.Add(1)
		go func() { // owned by l: ends when Stop cancels ctx
			defer l.wg.Done()
			for ctx.Err() == nil {
				l.inFlight[0].Add(1)
				op := Op{Start: time.Now()}
				_, err := d.Do(ctx)
				op.End = time.Now()
				l.inFlight[0].Add(-1)
				if ctx.Err() != nil {
					return // cut by Stop: not counted
				}
				if err != nil {
					op.Err = err.Error()
				}
				l.record(op)
			}
		}()
	}
	for range l.StreamWorkers {
		l.wg.Add(1)
		go func() { // owned by l: ends when Stop cancels ctx
			defer l.wg.Done()
			for ctx.Err() == nil {
				l.inFlight[1].Add(1)
				op := l.session(ctx)
				l.inFlight[1].Add(-1)
				if ctx.Err() != nil {
					return
				}
				l.record(op)
			}
		}()
	}
}

// Stop ends the workers and waits for them; ops cut by the stop are not recorded.
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
}

// InFlight is how many once requests and sessions are running now.
func (l *Load) InFlight() (once, stream int) {
	return int(l.inFlight[0].Load()), int(l.inFlight[1].Load())
}

// Ops returns a copy of the recorded ops.
func (l *Load) Ops() []Op {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Op(nil), l.ops...)
}

// Successes counts the successful ops of a kind ended after t.
func (l *Load) Successes(stream bool, after time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.ops {
		if o.Stream == stream && !o.Failed() && o.End.After(after) {
			n++
		}
	}
	return n
}

func (l *Load) record(op Op) {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

// session runs one WebSocket session of l.Frames frames (status 0, 1..., 2), one result
// awaited per frame.
func (l *Load) session(ctx context.Context) Op {
	op := Op{Stream: true, Start: time.Now()}
	defer func() { op.End = time.Now() }()
	ws := strings.Replace(strings.TrimRight(l.URL, "/"), "http://", "ws://", 1) + "/v1/private/" + l.Service
	u, err := asfbench.SignURL(ws, http.MethodGet, l.App, time.Now())
	if err != nil {
		op.Err = err.Error()
		return op
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, u, nil)
	if err != nil {
		op.Err = "dial: " + err.Error()
		op.End = time.Now()
		return op
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.NetConn().Close() })
	defer stop()
	text := base64.StdEncoding.EncodeToString([]byte("chaos"))
	frames := max(l.Frames, 2)
	for i := range frames {
		status := 1
		switch i {
		case 0:
			status = 0
		case frames - 1:
			status = 2
		}
		msg := fmt.Sprintf(`{"header":{"app_id":%q,"status":%d},"parameter":{%q:{}},"payload":{"input":{"encoding":"utf8","status":%d,"seq":%d,"text":%q}}}`,
			l.AppID, status, l.Service, status, i, text)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			op.Err, op.Bad = "write: "+err.Error(), true
			op.End = time.Now()
			return op
		}
		code, st, err := readResult(conn)
		if err != nil {
			op.Err, op.Bad = "socket ended without a result or an error frame: "+err.Error(), true
			op.End = time.Now()
			return op
		}
		if code != 0 {
			op.Err = fmt.Sprintf("error frame %d", code)
			op.End = time.Now()
			// Exactly one error frame: nothing but the close may follow.
			if c, _, err := readResult(conn); err == nil {
				op.Bad = true
				op.Err += fmt.Sprintf(", then another frame (code %d)", c)
			}
			return op
		}
		if st == 2 {
			op.End = time.Now()
			return op
		}
		if l.FrameGap > 0 && i < frames-1 {
			select {
			case <-ctx.Done():
				return op
			case <-time.After(l.FrameGap):
			}
		}
	}
	op.Err, op.Bad = "no last result (status 2)", true
	op.End = time.Now()
	return op
}

// readResult reads one frame and returns its header code and status.
func readResult(conn *websocket.Conn) (code, status int, err error) {
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		return 0, 0, err
	}
	var r struct {
		Header struct {
			Code   int `json:"code"`
			Status int `json:"status"`
		} `json:"header"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, 0, errors.Join(errors.New("bad frame"), err)
	}
	return r.Header.Code, r.Header.Status, nil
}
