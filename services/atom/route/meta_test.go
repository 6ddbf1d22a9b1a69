package route

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/atom/convert"
)

// namedPicker answers only for one loader service, so a test sees which one was asked.
type namedPicker struct {
	fakePicker
	service string
	asked   []string
}

func (p *namedPicker) Pick(ctx context.Context, service string, n int, exclude []string, key string) ([]string, error) {
	p.mu.Lock()
	p.asked = append(p.asked, service)
	p.mu.Unlock()
	if service != p.service {
		return nil, aserr.ErrNotFound
	}
	return p.fakePicker.Pick(ctx, service, n, exclude, key)
}

func metaFor(m *convert.Meta) func(string) *convert.Meta {
	return func(c string) *convert.Meta {
		if c == "echo" {
			return m
		}
		return nil
	}
}

func TestOnceUsesLoaderServiceAndOnceTimeout(t *testing.T) {
	var gotDeadline time.Duration
	d := fakeDialer{"a": {once: func(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
		dl, _ := ctx.Deadline()
		gotDeadline = time.Until(dl)
		if in.ServiceName != "echo-engine" || in.ServiceId != "echo" {
			return nil, aserr.Newf(10163, "service %s/%s", in.ServiceId, in.ServiceName)
		}
		return &loaderpb.LoaderOutput{Status: loaderpb.Status_STATUS_ONCE}, nil
	}}}
	p := &namedPicker{fakePicker: fakePicker{addrs: []string{"a"}}, service: "echo-engine"}
	r := New(p, d, Options{OnceTimeout: time.Hour, Meta: metaFor(&convert.Meta{Service: "echo-engine", OnceTimeout: 2 * time.Second})})
	if _, err := r.Once(t.Context(), frame(3, "x")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.asked, []string{"echo-engine"}) {
		t.Fatalf("picked for %v", p.asked)
	}
	if gotDeadline <= 0 || gotDeadline > 2*time.Second {
		t.Fatalf("loader deadline in %v, want the capability's 2 s", gotDeadline)
	}
	// The caller's shorter deadline wins over the capability's.
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := r.Once(ctx, frame(3, "x")); err != nil {
		t.Fatal(err)
	}
	if gotDeadline > 500*time.Millisecond {
		t.Fatalf("loader deadline in %v, want the caller's 500 ms", gotDeadline)
	}
}

func TestOnceTimeoutIs10102(t *testing.T) {
	d := fakeDialer{"a": {once: func(ctx context.Context, _ *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}}
	r := New(&fakePicker{addrs: []string{"a"}}, d, Options{Meta: metaFor(&convert.Meta{OnceTimeout: 50 * time.Millisecond})})
	start := time.Now()
	_, err := r.Once(t.Context(), frame(3, "x"))
	if aserr.CodeOf(err) != 10102 || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestStreamFirstResultTimeout(t *testing.T) {
	d := fakeDialer{"a": {script: hang}}
	defer d.wait()
	c := newClient(t.Context())
	r := New(&fakePicker{addrs: []string{"a"}}, d, Options{Meta: metaFor(&convert.Meta{FirstResultTimeout: 100 * time.Millisecond})})
	done := runStream(r, t.Context(), c)
	sendFrame(t, c, frame(0, "f0"))
	err := waitErr(t, done, 2*time.Second)
	if aserr.CodeOf(err) != 10200 {
		t.Fatalf("err = %v, want 10200", err)
	}
	select {
	case <-d["a"].session(0).ctx.Done():
	default:
		t.Fatal("loader session not aborted")
	}
}

func TestStreamFirstResultInTimeKeepsSession(t *testing.T) {
	d := fakeDialer{"a": {script: echo}}
	defer d.wait()
	c := newClient(t.Context())
	r := New(&fakePicker{addrs: []string{"a"}}, d, Options{Meta: metaFor(&convert.Meta{FirstResultTimeout: 150 * time.Millisecond})})
	done := runStream(r, t.Context(), c)
	sendFrame(t, c, frame(0, "f0"))
	recvOut(t, c)
	// Past the first-result timeout, the session carries on.
	time.Sleep(200 * time.Millisecond) // the timeout must elapse; nothing to wait on
	sendFrame(t, c, frame(2, "f1"))
	if o := recvOut(t, c); o.Status != loaderpb.Status_STATUS_END {
		t.Fatalf("status %v", o.Status)
	}
	if err := waitErr(t, done, 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestStreamSessionTimeout(t *testing.T) {
	d := fakeDialer{"a": {script: echo}}
	defer d.wait()
	c := newClient(t.Context())
	r := New(&fakePicker{addrs: []string{"a"}}, d, Options{Meta: metaFor(&convert.Meta{SessionTimeout: 100 * time.Millisecond})})
	done := runStream(r, t.Context(), c)
	sendFrame(t, c, frame(0, "f0"))
	recvOut(t, c)
	if err := waitErr(t, done, 2*time.Second); aserr.CodeOf(err) != 10114 {
		t.Fatalf("err = %v, want 10114", err)
	}
}

func TestDeadLoaderTriedLastByNextSession(t *testing.T) {
	d := fakeDialer{"a": {script: dieAfterFirst}, "b": {script: echo}}
	defer d.wait()
	r := New(&fakePicker{addrs: []string{"a", "b"}}, d, Options{})
	c := newClient(t.Context())
	done := runStream(r, t.Context(), c)
	sendFrame(t, c, frame(0, "f0"))
	recvOut(t, c)
	sendFrame(t, c, frame(1, "f1"))
	if err := waitErr(t, done, time.Second); aserr.CodeOf(err) != 10222 {
		t.Fatalf("err = %v, want 10222 at once", err)
	}
	// lbclient still lists a first, but the next session goes to b.
	c2 := newClient(t.Context())
	done2 := runStream(r, t.Context(), c2)
	sendFrame(t, c2, frame(0, "g0"))
	recvOut(t, c2)
	sendFrame(t, c2, frame(2, "g1"))
	recvOut(t, c2)
	if err := waitErr(t, done2, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if d["a"].sessionCount() != 1 || d["b"].sessionCount() != 1 {
		t.Fatalf("sessions a=%d b=%d", d["a"].sessionCount(), d["b"].sessionCount())
	}
	// A refusal (licence full) does not make a loader suspect.
	r2 := New(&fakePicker{addrs: []string{"x", "y"}}, fakeDialer{"x": {once: onceErr(aserr.ErrLicenceFull)}, "y": {once: onceOK("y")}}, Options{})
	if _, err := r2.Once(t.Context(), frame(3, "z")); err != nil {
		t.Fatal(err)
	}
	if r2.suspects.has("x") {
		t.Fatal("licence-full loader marked suspect")
	}
}

func TestSuspectsExpire(t *testing.T) {
	s := newSuspects(50 * time.Millisecond)
	s.mark("a")
	addrs := []string{"a", "b", "c"}
	s.last(addrs)
	if !slices.Equal(addrs, []string{"b", "c", "a"}) {
		t.Fatalf("order %v", addrs)
	}
	testpoll.Until(t, time.Second, "the condition", func() bool { return !s.has("a") })
	addrs = []string{"a", "b"}
	s.last(addrs)
	if !slices.Equal(addrs, []string{"a", "b"}) {
		t.Fatalf("order after expiry %v", addrs)
	}
}
