package transport

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lateAtom answers a stream frame of capability "late" only when the test releases a
// result, so a result can be produced while the session has no socket; other
// capabilities are answered at once.
type lateAtom struct {
	*fakeAtom
	release chan struct{}
	got     atomic.Int32 // stream frames received
}

func (l *lateAtom) Stream(ss atompb.Atom_StreamServer) error {
	for {
		fr, err := ss.Recv()
		if err != nil {
			if ss.Context().Err() != nil {
				l.cancelled.Add(1)
			}
			return err
		}
		l.got.Add(1)
		if fr.GetCapability() == "late" {
			select {
			case <-l.release:
			case <-ss.Context().Done():
				l.cancelled.Add(1)
				return ss.Context().Err()
			}
		}
		seq := "null"
		if len(fr.GetPayload()) > 0 {
			seq = fr.GetPayload()[0].GetAttributes()["seq"]
		}
		if err := ss.Send(&atompb.Result{Sid: fr.GetSid(), Status: fr.GetStatus(), Payload: []*atompb.Item{{
			Name: "result", DataType: "text", Attributes: map[string]string{"format": "json"}, Data: []byte(`{"seq":` + seq + `}`),
		}}}); err != nil {
			return err
		}
		if fr.GetStatus() == ase.StatusEnd {
			return nil
		}
	}
}

// retrySchema is echoWebAPISchema for capability name, with enable_retry.
func retrySchema(name string) string {
	s := strings.Replace(echoWebAPISchema, `"route": "/v2/echo",`, `"route": "/v2/echo", "enable_retry": true,`, 1)
	return strings.ReplaceAll(s, "echo", name)
}

func retryGate(t *testing.T, wait time.Duration) (*edge, *lateAtom) {
	t.Helper()
	reg := capability.NewRegistry()
	for _, name := range []string{"echo", "late"} {
		_, err := reg.Put(name+".json", 1, []byte(retrySchema(name)))
		require.NoError(t, err)
	}
	_, err := reg.Put("plain.json", 1, []byte(strings.ReplaceAll(echoWebAPISchema, "echo", "plain")))
	require.NoError(t, err)
	late := &lateAtom{fakeAtom: &fakeAtom{}, release: make(chan struct{}, 16)}
	g := startGateWith(t, late.fakeAtom, late, func(o *Options) { o.Schemas, o.RetryWait = reg, wait })
	return g, late
}

// heldResults counts the messages held for a retry by the sessions waiting for one.
func heldResults(h *Handler) int { return h.ws.Held() }

func sendText(t *testing.T, conn *websocket.Conn, s string) {
	t.Helper()
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(s)))
}

func retryMsg(sid string) string {
	return `{"common":{"app_id":"app1","cmd":"retry","sid":"` + sid + `"}}`
}

// TestWebAPIRetryResumes: a session whose socket drops goes on, on a new socket, after
// common.cmd retry with its sid — the same sid, the same atom stream.
func TestWebAPIRetryResumes(t *testing.T) {
	g, _ := retryGate(t, 5*time.Second)
	conn := dialPath(t, g, "/v2/echo")
	sendText(t, conn, `{"common":{"app_id":"app1"},"data":{"status":0,"seq":0,"text":"YQ=="}}`)
	first := readWebAPI(t, conn)
	require.Equal(t, 0, first.Code, first.Message)
	require.NoError(t, conn.UnderlyingConn().Close()) // the network drops: no close frame
	waitFor(t, 2*time.Second, func() bool { return g.h.Parked() == 1 })

	again := dialPath(t, g, "/v2/echo")
	sendText(t, again, retryMsg(first.Sid))
	sendText(t, again, `{"data":{"status":1,"seq":1,"text":"Yg=="}}`)
	r := readWebAPI(t, again)
	require.Equal(t, 0, r.Code, r.Message)
	assert.Equal(t, first.Sid, r.Sid, "the resumed session keeps its sid")
	assert.JSONEq(t, `{"seq":1}`, string(r.Data["result"]))
	sendText(t, again, `{"data":{"status":2,"seq":2,"text":""}}`)
	r = readWebAPI(t, again)
	assert.Equal(t, "2", string(r.Data["status"]))
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, again).Code)
	assert.Equal(t, 0, g.h.Parked())
	assert.Equal(t, int32(0), g.fake.cancelled.Load(), "one atom stream, never cancelled")
	// Both sockets are requests that ended well.
	waitFor(t, 2*time.Second, func() bool { return counter(t, g.reg, "echo", "stream", "0") == 2 })
}

// TestWebAPIRetryDeliversHeldResults: a result produced while the session has no socket
// is held and is the first message on the socket of the retry.
func TestWebAPIRetryDeliversHeldResults(t *testing.T) {
	g, late := retryGate(t, 5*time.Second)
	conn := dialPath(t, g, "/v2/late")
	sendText(t, conn, `{"common":{"app_id":"app1"},"data":{"status":0,"seq":0,"text":"YQ=="}}`)
	late.release <- struct{}{}
	first := readWebAPI(t, conn)
	require.Equal(t, 0, first.Code, first.Message)
	sendText(t, conn, `{"data":{"status":1,"seq":1,"text":"Yg=="}}`)
	waitFor(t, 2*time.Second, func() bool { return late.got.Load() == 2 })
	require.NoError(t, conn.UnderlyingConn().Close())
	waitFor(t, 2*time.Second, func() bool { return g.h.Parked() == 1 })
	late.release <- struct{}{} // the result of frame 1 comes while no socket is there
	waitFor(t, 2*time.Second, func() bool { return heldResults(g.h) == 1 })

	again := dialPath(t, g, "/v2/late")
	sendText(t, again, retryMsg(first.Sid))
	r := readWebAPI(t, again)
	require.Equal(t, 0, r.Code, r.Message)
	assert.Equal(t, first.Sid, r.Sid)
	assert.JSONEq(t, `{"seq":1}`, string(r.Data["result"]))
	sendText(t, again, `{"data":{"status":2,"seq":2,"text":""}}`)
	late.release <- struct{}{}
	r = readWebAPI(t, again)
	assert.Equal(t, "2", string(r.Data["status"]))
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, again).Code)
}

func TestWebAPIRetryRefusals(t *testing.T) {
	g, _ := retryGate(t, 5*time.Second)
	refused := func(path, first, second string, code int, msg string) {
		t.Helper()
		conn := dialPath(t, g, path)
		if first != "" {
			sendText(t, conn, first)
			require.Equal(t, 0, readWebAPI(t, conn).Code)
		}
		sendText(t, conn, second)
		r := readWebAPI(t, conn)
		assert.Equal(t, code, r.Code, second)
		assert.Contains(t, r.Message, msg, second)
		assert.Equal(t, websocket.CloseNormalClosure, readClose(t, conn).Code)
	}
	refused("/v2/echo", "", retryMsg("ase-unknown@x"), 10165, "invalid session handle")
	refused("/v2/echo", "", `{"common":{"app_id":"app1","cmd":"retry"}}`, 10163, "common.sid is required")
	refused("/v2/plain", "", retryMsg("ase-unknown@x"), 10163, "capability plain does not enable retry")
	refused("/v2/echo", `{"common":{"app_id":"app1"},"data":{"status":0,"seq":0,"text":"YQ=="}}`, retryMsg("x"), 10163, "first message")

	// A session of another capability cannot be taken over.
	conn := dialPath(t, g, "/v2/echo")
	sendText(t, conn, `{"common":{"app_id":"app1"},"data":{"status":0,"seq":0,"text":"YQ=="}}`)
	sid := readWebAPI(t, conn).Sid
	require.NoError(t, conn.UnderlyingConn().Close())
	waitFor(t, 2*time.Second, func() bool { return g.h.Parked() == 1 })
	refused("/v2/late", "", retryMsg(sid), 10165, "invalid session handle")
	assert.Equal(t, 1, g.h.Parked(), "the session still waits for its own retry")

	// Multiplex sub-sessions are not resumed; the socket goes on.
	mux := dialPath(t, g, "/v2/echo?stream_mode=multiplex")
	sendText(t, mux, `{"common":{"app_id":"app1","cid":"a","cmd":"retry","sid":"`+sid+`"}}`)
	r := readWebAPI(t, mux)
	assert.Equal(t, 10163, r.Code)
	assert.Equal(t, "a", r.Cid)
	assert.Contains(t, r.Message, "multiplex")
	// A close of a sub-session that is not running (clients send one after every session,
	// after an error too) is dropped: the next answer is the kpal's.
	sendText(t, mux, `{"common":{"app_id":"app1","cid":"zz","cmd":"close"},"data":{}}`)
	sendText(t, mux, `{"common":{"cid":"k","cmd":"kpal"}}`)
	r = readWebAPI(t, mux)
	assert.Equal(t, 0, r.Code)
	assert.Equal(t, "k", r.Cid)
}

// TestWebAPIRetryWaitEnds: without a retry within RetryWait the session ends as any
// dropped session does: its atom stream is cancelled, its code is 10222.
func TestWebAPIRetryWaitEnds(t *testing.T) {
	g, _ := retryGate(t, 100*time.Millisecond)
	conn := dialPath(t, g, "/v2/echo")
	sendText(t, conn, `{"common":{"app_id":"app1"},"data":{"status":0,"seq":0,"text":"YQ=="}}`)
	sid := readWebAPI(t, conn).Sid
	require.NoError(t, conn.UnderlyingConn().Close())
	waitFor(t, 2*time.Second, func() bool { return g.fake.cancelled.Load() == 1 })
	assert.Equal(t, 0, g.h.Parked())
	waitFor(t, 2*time.Second, func() bool { return counter(t, g.reg, "echo", "stream", "10222") == 1 })

	again := dialPath(t, g, "/v2/echo")
	sendText(t, again, retryMsg(sid))
	assert.Equal(t, 10165, readWebAPI(t, again).Code)
}

// TestWebAPIRetryNotAfterClose: a client that closes its socket on purpose ends its
// session at once; nothing waits for a retry.
func TestWebAPIRetryNotAfterClose(t *testing.T) {
	g, _ := retryGate(t, time.Minute)
	conn := dialPath(t, g, "/v2/echo")
	sendText(t, conn, `{"common":{"app_id":"app1"},"data":{"status":0,"seq":0,"text":"YQ=="}}`)
	require.Equal(t, 0, readWebAPI(t, conn).Code)
	require.NoError(t, conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)))
	waitFor(t, 2*time.Second, func() bool { return g.fake.cancelled.Load() == 1 })
	assert.Equal(t, 0, g.h.Parked())
}
