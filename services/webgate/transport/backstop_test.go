package transport

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// atomTimeout is how long the capabilities of the backstop tests may run: atom ends them
// with its own code when it has passed.
const atomTimeout = 200 * time.Millisecond

// timingAtom plays atom's side of the capability timeouts: it answers 10102 (once) or
// 10114 (stream) in band once the capability's timeout has passed plus lag, the time atom
// takes to notice and report it, and records whether webgate had given up by then.
type timingAtom struct {
	*fakeAtom
	lag      time.Duration
	answered atomic.Int32 // timeouts reported to webgate
	cutShort atomic.Int32 // calls and streams webgate ended before atom's answer
}

func (a *timingAtom) Call(ctx context.Context, fr *atompb.Frame) (*atompb.Result, error) {
	if fr.GetCapability() != "slow" {
		return a.fakeAtom.Call(ctx, fr)
	}
	select {
	case <-time.After(atomTimeout + a.lag): // atom's once timer, then its answer
	case <-ctx.Done():
		a.cutShort.Add(1)
		return nil, ctx.Err()
	}
	a.answered.Add(1)
	return &atompb.Result{Sid: fr.GetSid(), Code: int32(aserr.ErrOnceTimeout.Code), Message: "once request timeout (atom)"}, nil
}

func (a *timingAtom) Stream(ss atompb.Atom_StreamServer) error {
	fr, err := ss.Recv()
	if err != nil {
		return err
	}
	select {
	case <-time.After(atomTimeout + a.lag): // atom's session lifetime, then its answer
	case <-ss.Context().Done():
		a.cutShort.Add(1)
		return ss.Context().Err()
	}
	a.answered.Add(1)
	return ss.Send(&atompb.Result{Sid: fr.GetSid(), Status: 2, Code: int32(aserr.ErrSessionTimeout.Code), Message: "session timeout (atom)"})
}

func timingGate(t *testing.T, lag, margin time.Duration) (*edge, *timingAtom) {
	t.Helper()
	reg := capability.NewRegistry()
	secs := strconv.FormatFloat(atomTimeout.Seconds(), 'f', -1, 64)
	_, err := reg.Put("slow.json", 1, []byte(`{"meta":{"serviceId":"slow","once_timeout":`+secs+`,"session_timeout":`+secs+`}}`))
	require.NoError(t, err)
	a := &timingAtom{fakeAtom: &fakeAtom{}, lag: lag}
	g := startGateWith(t, a.fakeAtom, a, func(o *Options) { o.Schemas, o.BackstopMargin = reg, margin })
	return g, a
}

// TestOnceTimeoutIsAtoms: a capability's once_timeout is atom's: webgate waits past it
// for atom's in-band 10102, and the client gets atom's answer.
func TestOnceTimeoutIsAtoms(t *testing.T) {
	g, a := timingGate(t, 100*time.Millisecond, 0) // the default margin, 1 s
	resp, b := post(t, g.srv.URL+"/v1/private/slow", onceBody)
	assert.Equal(t, ase.HTTPStatus(aserr.ErrOnceTimeout.Code), resp.StatusCode, string(b))
	assert.Contains(t, string(b), `"code":10102`)
	assert.Contains(t, string(b), "(atom)")
	assert.Equal(t, int32(1), a.answered.Load())
	assert.Zero(t, a.cutShort.Load())
}

// TestOnceBackstop: an atom that does not answer is cut off by webgate's backstop,
// once_timeout plus the margin, with 10102.
func TestOnceBackstop(t *testing.T) {
	g, a := timingGate(t, time.Hour, 100*time.Millisecond)
	start := time.Now()
	resp, b := post(t, g.srv.URL+"/v1/private/slow", onceBody)
	assert.GreaterOrEqual(t, time.Since(start), atomTimeout+100*time.Millisecond)
	assert.Equal(t, ase.HTTPStatus(aserr.ErrOnceTimeout.Code), resp.StatusCode, string(b))
	assert.Contains(t, string(b), `"code":10102`)
	waitFor(t, 2*time.Second, func() bool { return a.cutShort.Load() == 1 })
}

// TestSessionTimeoutIsAtoms: a capability's session_timeout is atom's: the client gets
// atom's 10114 and webgate's lifetime timer does not end the session first.
func TestSessionTimeoutIsAtoms(t *testing.T) {
	g, a := timingGate(t, 100*time.Millisecond, 0)
	conn := dial(t, g, "slow")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(frame(0, 0))))
	r := readResponse(t, conn)
	assert.Equal(t, aserr.ErrSessionTimeout.Code, r.Header.Code)
	assert.Contains(t, r.Header.Message, "(atom)")
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, conn).Code)
	assert.Equal(t, int32(1), a.answered.Load())
	assert.Zero(t, a.cutShort.Load())
}

// TestSessionBackstop: a session whose atom does not end it is ended by webgate's
// backstop, session_timeout plus the margin, with 10114.
func TestSessionBackstop(t *testing.T) {
	g, a := timingGate(t, time.Hour, 100*time.Millisecond)
	conn := dial(t, g, "slow")
	start := time.Now()
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(frame(0, 0))))
	r := readResponse(t, conn)
	assert.GreaterOrEqual(t, time.Since(start), atomTimeout+100*time.Millisecond)
	assert.Equal(t, aserr.ErrSessionTimeout.Code, r.Header.Code)
	assert.NotContains(t, r.Header.Message, "(atom)")
	waitFor(t, 2*time.Second, func() bool { return a.cutShort.Load() == 1 })
}
