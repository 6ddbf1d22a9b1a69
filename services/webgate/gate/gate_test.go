package gate

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowAtom answers a once call after delay with atom's in-band 10102, or gives up with
// its context; it opens no streams.
type slowAtom struct{ delay time.Duration }

func (a slowAtom) Call(ctx context.Context, f *atompb.Frame) (*atompb.Result, error) {
	select {
	case <-time.After(a.delay):
		return &atompb.Result{Sid: f.GetSid(), Code: int32(aserr.ErrOnceTimeout.Code), Message: "once request timeout"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (slowAtom) Stream(context.Context) (Stream, error) { return nil, errors.New("no streams") }

func newGate(t *testing.T, atom Atom, tweak func(*Options)) *Gate {
	t.Helper()
	opts := Options{ReadTimeout: 5 * time.Second, SessionTimeout: 30 * time.Second, SIDs: ase.NewSIDGen("ts", "127.0.0.1:1")}
	if tweak != nil {
		tweak(&opts)
	}
	g, err := New(atom, opts, zerolog.Nop(), nil)
	require.NoError(t, err)
	return g
}

func schema(t *testing.T, js string) *capability.Schema {
	t.Helper()
	s, err := capability.Parse([]byte(js))
	require.NoError(t, err)
	return s
}

// TestTimeoutsBackstop: a capability's session_timeout is atom's, so the gate's lifetime
// for it is the timeout plus the margin; read_timeout is the gate's own and applies as set.
func TestTimeoutsBackstop(t *testing.T) {
	g := newGate(t, slowAtom{}, func(o *Options) { o.BackstopMargin = 300 * time.Millisecond })
	read, life := g.Timeouts(&Request{})
	assert.Equal(t, 5*time.Second, read)
	assert.Equal(t, 30*time.Second, life, "without a capability timeout the edge's own lifetime")
	s := schema(t, `{"meta":{"serviceId":"c","read_timeout":2,"session_timeout":60}}`)
	read, life = g.Timeouts(&Request{Schema: s})
	assert.Equal(t, 2*time.Second, read)
	assert.Equal(t, 60*time.Second+300*time.Millisecond, life)

	read, life = newGate(t, slowAtom{}, nil).Timeouts(&Request{Schema: s})
	assert.Equal(t, 2*time.Second, read)
	assert.Equal(t, 60*time.Second+DefaultBackstopMargin, life)
}

// TestCallWaitsForAtomsTimeout: atom's 10102, arriving after once_timeout, reaches the
// caller as atom's result; an atom that does not answer is cut off at once_timeout plus
// the margin with 10102.
func TestCallWaitsForAtomsTimeout(t *testing.T) {
	s := schema(t, `{"meta":{"serviceId":"c","once_timeout":0.1}}`)
	g := newGate(t, slowAtom{delay: 150 * time.Millisecond}, func(o *Options) { o.BackstopMargin = 200 * time.Millisecond })
	res, err := g.Call(context.Background(), &Request{Schema: s}, &atompb.Frame{})
	require.NoError(t, err)
	assert.Equal(t, int32(aserr.ErrOnceTimeout.Code), res.GetCode())

	g = newGate(t, slowAtom{delay: time.Hour}, func(o *Options) { o.BackstopMargin = 50 * time.Millisecond })
	start := time.Now()
	_, err = g.Call(context.Background(), &Request{Schema: s}, &atompb.Frame{})
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
	assert.Equal(t, aserr.ErrOnceTimeout.Code, aserr.CodeOf(err))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func app1(t *testing.T, js string) *auth.App {
	t.Helper()
	set, err := auth.ParseApps([]byte(js))
	require.NoError(t, err)
	app := set.ByID("app1")
	require.NotNil(t, app)
	return app
}

// TestAuthorize: the app's IP allow-list, capability list, QPS and concurrency limit
// decide, in that order, with the auth package's refusals.
func TestAuthorize(t *testing.T) {
	lim := auth.NewLimiter()
	g := newGate(t, slowAtom{}, func(o *Options) { o.Limiter = lim })
	app := app1(t, `[{"app_id":"app1","api_key":"k","api_secret":"s","capabilities":["ist"],"ip_allow":["10.0.0.0/8"],"max_sessions":1}]`)
	_, err := g.Authorize(app, "192.168.1.1", &Request{Capability: "ist"})
	assert.ErrorIs(t, err, auth.ErrIP)
	_, err = g.Authorize(app, "10.1.2.3", &Request{Capability: "tts"})
	assert.ErrorIs(t, err, auth.ErrCapability)
	lease, err := g.Authorize(app, "10.1.2.3", &Request{Capability: "ist"})
	require.NoError(t, err)
	_, err = g.Authorize(app, "10.1.2.3", &Request{Capability: "ist"})
	assert.ErrorIs(t, err, auth.ErrConnections)
	g.Release(lease)
	lease, err = g.Authorize(app, "10.1.2.3", &Request{Capability: "ist"})
	require.NoError(t, err)
	g.Release(lease)
	assert.Zero(t, lim.Active("app1"))
}

// TestSubsBooks: a multiplexed socket admits sub-sessions up to MaxSubSessions; one that
// delivered its last frame frees its slot at once; beyond the first each takes an app
// lease, given back as they end; ended cids are remembered, the latest 64.
func TestSubsBooks(t *testing.T) {
	lim := auth.NewLimiter()
	g := newGate(t, slowAtom{}, func(o *Options) { o.Limiter, o.MaxSubSessions = lim, 2 })
	app := app1(t, `[{"app_id":"app1","api_key":"k","api_secret":"s","max_sessions":3}]`)
	conn, ok := lim.Acquire(app, nil) // the socket's own lease
	require.True(t, ok)
	subs := NewSubs[string](g, &Request{App: app})
	require.NoError(t, subs.Admit(nil))
	subs.Add("a", "A")
	assert.Equal(t, 1, lim.Active("app1"), "the first sub-session rides on the socket's lease")
	require.NoError(t, subs.Admit(nil))
	subs.Add("b", "B")
	assert.Equal(t, 2, lim.Active("app1"))
	assert.ErrorIs(t, subs.Admit(nil), ErrSubSessionLimit)
	newest, found := subs.Newest()
	assert.True(t, found)
	assert.Equal(t, "B", newest)

	subs.Free("a") // a's last frame is on its way: its slot and b's extra lease are free
	assert.Equal(t, 1, lim.Active("app1"))
	require.NoError(t, subs.Admit(nil))
	subs.Add("c", "C")
	subs.Remove("a", true)
	assert.True(t, subs.Ended("a"))
	assert.False(t, subs.Ended("b"))
	v, found := subs.Get("c")
	assert.True(t, found)
	assert.Equal(t, "C", v)
	assert.Equal(t, 2, subs.Len())
	subs.Remove("b", true)
	subs.Remove("c", true)
	subs.ReleaseAll()
	assert.Equal(t, 1, lim.Active("app1"), "only the socket's lease is left")
	lim.Release(conn)

	for i := range 70 {
		subs.Remember("x" + strconv.Itoa(i))
	}
	assert.False(t, subs.Ended("a"), "the oldest ended cids are forgotten")
	assert.False(t, subs.Ended("x5"))
	assert.True(t, subs.Ended("x6"))
	assert.True(t, subs.Ended("x69"))
}

// TestSessionsRefuseAndClose: Refuse stops new sessions and leaves open ones; Close ends
// them through GoingAway; Wait returns when the last one ended.
func TestSessionsRefuseAndClose(t *testing.T) {
	g := newGate(t, slowAtom{}, nil)
	s := g.Sessions()
	require.True(t, s.Begin())
	s.Refuse()
	assert.False(t, s.Begin())
	select {
	case <-s.GoingAway():
		t.Fatal("refused, not closed")
	default:
	}
	s.Close()
	s.Close()
	<-s.GoingAway()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, s.Wait(ctx), context.DeadlineExceeded)
	s.End()
	require.NoError(t, s.Wait(context.Background()))
}
