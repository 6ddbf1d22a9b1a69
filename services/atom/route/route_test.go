package route

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// --- fakes ---------------------------------------------------------------------------

type pickCall struct {
	n       int
	exclude []string
	key     string
}

type fakePicker struct {
	mu    sync.Mutex
	addrs []string
	err   error
	calls []pickCall
}

func (p *fakePicker) Pick(_ context.Context, _ string, n int, exclude []string, key string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, pickCall{n, exclude, key})
	if p.err != nil {
		return nil, p.err
	}
	var out []string
	for _, a := range p.addrs {
		if !slices.Contains(exclude, a) && len(out) < n {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, aserr.ErrNoEngine
	}
	return out, nil
}

// script plays a loader session: it reads inputs and emits outputs; its return value
// ends the stream (nil: clean end).
type script func(ctx context.Context, in <-chan *loaderpb.LoaderInput, emit func(*loaderpb.LoaderOutput)) error

type fakeLoader struct {
	once     func(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error)
	script   script
	wg       sync.WaitGroup
	mu       sync.Mutex
	onces    int
	sessions []*fakeSession
}

func (l *fakeLoader) Once(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	l.mu.Lock()
	l.onces++
	l.mu.Unlock()
	return l.once(ctx, in)
}

func (l *fakeLoader) onceCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.onces
}

func (l *fakeLoader) sessionCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sessions)
}

func (l *fakeLoader) session(i int) *fakeSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sessions[i]
}

type fakeSession struct {
	ctx       context.Context
	ins       chan *loaderpb.LoaderInput
	outs      chan *loaderpb.LoaderOutput
	ended     chan struct{}
	endErr    error
	closeOnce sync.Once
	mu        sync.Mutex
	received  []int32
}

func (l *fakeLoader) Session(ctx context.Context) (Session, error) {
	s := &fakeSession{ctx: ctx, ins: make(chan *loaderpb.LoaderInput), outs: make(chan *loaderpb.LoaderOutput, 64), ended: make(chan struct{})}
	l.mu.Lock()
	l.sessions = append(l.sessions, s)
	l.mu.Unlock()
	record := make(chan *loaderpb.LoaderInput)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		err := l.script(ctx, record, func(o *loaderpb.LoaderOutput) { s.outs <- o })
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		s.endErr = err
		close(s.ended)
		close(s.outs)
	}()
	l.wg.Add(1)
	go func() { // moves inputs from Send to the script, recording their order
		defer l.wg.Done()
		defer close(record)
		for {
			select {
			case in, ok := <-s.ins:
				if !ok {
					return
				}
				s.mu.Lock()
				s.received = append(s.received, in.SyncId)
				s.mu.Unlock()
				select {
				case record <- in:
				case <-s.ended:
					return
				}
			case <-s.ended:
				return
			}
		}
	}()
	return s, nil
}

func (s *fakeSession) Send(in *loaderpb.LoaderInput) error {
	select {
	case s.ins <- in:
		return nil
	case <-s.ended:
		return io.EOF
	case <-s.ctx.Done():
		return io.EOF
	}
}

func (s *fakeSession) CloseSend() error {
	s.closeOnce.Do(func() { close(s.ins) })
	return nil
}

func (s *fakeSession) Recv() (*loaderpb.LoaderOutput, error) {
	select {
	case o, ok := <-s.outs:
		if ok {
			return o, nil
		}
		if s.endErr != nil {
			return nil, s.endErr
		}
		return nil, io.EOF
	case <-s.ctx.Done():
		return nil, context.Canceled
	}
}

func (s *fakeSession) syncIDs() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

type fakeDialer map[string]*fakeLoader

func (d fakeDialer) Loader(addr string) (Loader, error) {
	l, ok := d[addr]
	if !ok {
		return nil, aserr.Newf(10222, "no route to %s", addr)
	}
	return l, nil
}

func (d fakeDialer) wait() {
	for _, l := range d {
		l.wg.Wait()
	}
}

type fakeClient struct {
	ctx     context.Context
	frames  chan *atompb.Frame
	recvErr chan error
	got     chan *loaderpb.LoaderOutput
}

func newClient(ctx context.Context) *fakeClient {
	return &fakeClient{ctx: ctx, frames: make(chan *atompb.Frame), recvErr: make(chan error, 1), got: make(chan *loaderpb.LoaderOutput, 64)}
}

func (c *fakeClient) Recv() (*atompb.Frame, error) {
	select {
	case f, ok := <-c.frames:
		if !ok {
			return nil, io.EOF
		}
		return f, nil
	case err := <-c.recvErr:
		return nil, err
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
}

func (c *fakeClient) Send(o *loaderpb.LoaderOutput) error {
	c.got <- o
	return nil
}

// --- scripts -------------------------------------------------------------------------

func outFor(in *loaderpb.LoaderInput) *loaderpb.LoaderOutput {
	st := loaderpb.Status_STATUS_CONTINUE
	if in.Status == loaderpb.Status_STATUS_END {
		st = loaderpb.Status_STATUS_END
	}
	return &loaderpb.LoaderOutput{Status: st, Pl: in.Pl}
}

// echo answers every input with its payload and ends after END.
func echo(ctx context.Context, in <-chan *loaderpb.LoaderInput, emit func(*loaderpb.LoaderOutput)) error {
	for {
		select {
		case x, ok := <-in:
			if !ok {
				return nil
			}
			emit(outFor(x))
			if x.Status == loaderpb.Status_STATUS_END {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// refuseAfter reads n inputs without answering, then fails with err.
func refuseAfter(n int, err error) script {
	return func(ctx context.Context, in <-chan *loaderpb.LoaderInput, _ func(*loaderpb.LoaderOutput)) error {
		for range n {
			select {
			case <-in:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return err
	}
}

// dieAfterFirst answers the first input, then fails with 10222 as a dead loader does.
func dieAfterFirst(ctx context.Context, in <-chan *loaderpb.LoaderInput, emit func(*loaderpb.LoaderOutput)) error {
	select {
	case x := <-in:
		emit(outFor(x))
	case <-ctx.Done():
		return ctx.Err()
	}
	return aserr.New(10222, "connection reset")
}

// hang reads inputs and never answers; it ends when its context is cancelled.
func hang(ctx context.Context, in <-chan *loaderpb.LoaderInput, _ func(*loaderpb.LoaderOutput)) error {
	for {
		select {
		case <-in:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func frame(status int32, text string) *atompb.Frame {
	return &atompb.Frame{Capability: "echo", Sid: "sid1", Status: status,
		Header:  map[string]string{"app_id": "app", "uid": "u1"},
		Payload: []*atompb.Item{{Name: "input", DataType: "text", Data: []byte(text)}}}
}

func recvOut(t *testing.T, c *fakeClient) *loaderpb.LoaderOutput {
	t.Helper()
	select {
	case o := <-c.got:
		return o
	case <-time.After(3 * time.Second):
		t.Fatal("no output in time")
		return nil
	}
}

func runStream(r *Router, ctx context.Context, c *fakeClient) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Stream(ctx, c) }()
	return done
}

func waitErr(t *testing.T, done <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatal("Stream did not return in time")
		return nil
	}
}

func sendFrame(t *testing.T, c *fakeClient, f *atompb.Frame) {
	t.Helper()
	select {
	case c.frames <- f:
	case <-time.After(3 * time.Second):
		t.Fatal("frame not accepted in time")
	}
}

type countObserver struct {
	mu      sync.Mutex
	retries []int
	errs    []int
}

func (o *countObserver) Retry(_ string, code int) {
	o.mu.Lock()
	o.retries = append(o.retries, code)
	o.mu.Unlock()
}
func (o *countObserver) LoaderError(_ string, code int) {
	o.mu.Lock()
	o.errs = append(o.errs, code)
	o.mu.Unlock()
}
func (o *countObserver) Hop(string, time.Duration) {}

// --- once ----------------------------------------------------------------------------

func onceOK(tag string) func(context.Context, *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	return func(_ context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
		return &loaderpb.LoaderOutput{ServiceId: tag, Status: loaderpb.Status_STATUS_ONCE, Pl: in.Pl}, nil
	}
}

func onceErr(err error) func(context.Context, *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	return func(context.Context, *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) { return nil, err }
}

func TestOnceRetriesNextCandidateOnRefusal(t *testing.T) {
	for _, code := range []int{10110, 10222} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			p := &fakePicker{addrs: []string{"a", "b", "c"}}
			d := fakeDialer{"a": {once: onceErr(aserr.New(code, "refused"))}, "b": {once: onceOK("b")}, "c": {once: onceOK("c")}}
			obs := &countObserver{}
			r := New(p, d, Options{Observer: obs})
			out, err := r.Once(t.Context(), frame(3, "hi"))
			if err != nil {
				t.Fatal(err)
			}
			if out.ServiceId != "b" || d["a"].onceCount() != 1 || d["c"].onceCount() != 0 {
				t.Fatalf("served by %q; calls a=%d c=%d", out.ServiceId, d["a"].onceCount(), d["c"].onceCount())
			}
			if len(p.calls) != 1 || p.calls[0].n != 3 || p.calls[0].key != "u1" {
				t.Fatalf("pick calls = %+v", p.calls)
			}
			if !slices.Equal(obs.retries, []int{code}) {
				t.Fatalf("retries = %v", obs.retries)
			}
		})
	}
}

func TestOnceAsksForMoreCandidatesWithExclude(t *testing.T) {
	p := &fakePicker{addrs: []string{"a", "b"}}
	d := fakeDialer{"a": {once: onceErr(aserr.ErrLicenceFull)}, "b": {once: onceOK("b")}}
	r := New(p, d, Options{Candidates: 1})
	f := frame(3, "hi")
	delete(f.Header, "uid")
	out, err := r.Once(t.Context(), f)
	if err != nil || out.ServiceId != "b" {
		t.Fatalf("out=%v err=%v", out, err)
	}
	if len(p.calls) != 2 || !slices.Equal(p.calls[1].exclude, []string{"a"}) || p.calls[1].key != "app" {
		t.Fatalf("pick calls = %+v", p.calls)
	}
}

func TestOnceNoRetryOnOtherErrors(t *testing.T) {
	p := &fakePicker{addrs: []string{"a", "b"}}
	d := fakeDialer{"a": {once: onceErr(aserr.Received(30003, "engine said no"))}, "b": {once: onceOK("b")}}
	_, err := New(p, d, Options{}).Once(t.Context(), frame(3, "hi"))
	if aserr.CodeOf(err) != 30003 || aserr.MessageOf(err) != "engine said no" {
		t.Fatalf("err = %v", err)
	}
	if d["b"].onceCount() != 0 {
		t.Fatal("retried after an engine error")
	}
}

func TestOnceNoRetryAfterResult(t *testing.T) {
	p := &fakePicker{addrs: []string{"a", "b"}}
	d := fakeDialer{"a": {once: func(context.Context, *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
		return &loaderpb.LoaderOutput{Code: 10110, Err: "late refusal in a result"}, nil
	}}, "b": {once: onceOK("b")}}
	_, err := New(p, d, Options{}).Once(t.Context(), frame(3, "hi"))
	if aserr.CodeOf(err) != 10110 || d["b"].onceCount() != 0 {
		t.Fatalf("err=%v, b calls=%d", err, d["b"].onceCount())
	}
}

func TestOnceAttemptsBounded(t *testing.T) {
	addrs := []string{"a", "b", "c", "d", "e"}
	p := &fakePicker{addrs: addrs}
	d := fakeDialer{}
	for _, a := range addrs {
		d[a] = &fakeLoader{once: onceErr(aserr.ErrLicenceFull)}
	}
	_, err := New(p, d, Options{MaxAttempts: 4}).Once(t.Context(), frame(3, "hi"))
	if aserr.CodeOf(err) != 10110 {
		t.Fatalf("err = %v, want the last refusal", err)
	}
	total := 0
	for _, l := range d {
		total += l.onceCount()
	}
	if total != 4 {
		t.Fatalf("tried %d loaders, want 4", total)
	}
}

func TestOncePickErrorAndDeadline(t *testing.T) {
	_, err := New(&fakePicker{err: aserr.ErrNotFound}, fakeDialer{}, Options{}).Once(t.Context(), frame(3, "x"))
	if aserr.CodeOf(err) != 10404 {
		t.Fatalf("err = %v", err)
	}
	var hadDeadline bool
	d := fakeDialer{"a": {once: func(ctx context.Context, _ *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
		_, hadDeadline = ctx.Deadline()
		<-ctx.Done()
		return nil, ctx.Err()
	}}}
	start := time.Now()
	_, err = New(&fakePicker{addrs: []string{"a"}}, d, Options{OnceTimeout: 50 * time.Millisecond}).Once(t.Context(), frame(3, "x"))
	if aserr.CodeOf(err) != 10102 || !hadDeadline || time.Since(start) > 2*time.Second {
		t.Fatalf("err=%v deadline=%v took=%v", err, hadDeadline, time.Since(start))
	}
}

func TestOnceForcesOnceStatus(t *testing.T) {
	var got *loaderpb.LoaderInput
	d := fakeDialer{"a": {once: func(_ context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
		got = in
		return &loaderpb.LoaderOutput{}, nil
	}}}
	if _, err := New(&fakePicker{addrs: []string{"a"}}, d, Options{}).Once(t.Context(), frame(0, "x")); err != nil {
		t.Fatal(err)
	}
	if got.Status != loaderpb.Status_STATUS_ONCE || got.State != loaderpb.State_STATE_ONCE || got.Headers["sid"] != "sid1" {
		t.Fatalf("input = %v", got)
	}
}

// --- stream --------------------------------------------------------------------------

func TestStreamInOrder(t *testing.T) {
	d := fakeDialer{"a": {script: echo}}
	defer d.wait()
	r := New(&fakePicker{addrs: []string{"a"}}, d, Options{})
	c := newClient(t.Context())
	done := runStream(r, t.Context(), c)
	for i, st := range []int32{0, 1, 2} {
		f := frame(st, fmt.Sprint("part", i))
		if i > 0 { // follow-up frames may carry only payload and status
			f.Capability, f.Sid, f.Header = "", "", nil
		}
		sendFrame(t, c, f)
		o := recvOut(t, c)
		if string(o.Pl[0].Data) != fmt.Sprint("part", i) {
			t.Fatalf("output %d = %q", i, o.Pl[0].Data)
		}
	}
	if err := waitErr(t, done, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if ids := d["a"].session(0).syncIDs(); !slices.Equal(ids, []int32{0, 1, 2}) {
		t.Fatalf("sync ids = %v", ids)
	}
}

func TestStreamReplaysOnReopen(t *testing.T) {
	d := fakeDialer{"a": {script: refuseAfter(2, aserr.ErrLicenceFull)}, "b": {script: echo}}
	defer d.wait()
	obs := &countObserver{}
	r := New(&fakePicker{addrs: []string{"a", "b"}}, d, Options{Observer: obs})
	c := newClient(t.Context())
	done := runStream(r, t.Context(), c)
	sendFrame(t, c, frame(0, "f0"))
	sendFrame(t, c, frame(1, "f1"))
	// b replays f0 and f1 and answers both.
	for _, want := range []string{"f0", "f1"} {
		if o := recvOut(t, c); string(o.Pl[0].Data) != want {
			t.Fatalf("output = %q, want %q", o.Pl[0].Data, want)
		}
	}
	sendFrame(t, c, frame(2, "f2"))
	if o := recvOut(t, c); o.Status != loaderpb.Status_STATUS_END {
		t.Fatalf("last output = %v", o)
	}
	if err := waitErr(t, done, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if ids := d["b"].session(0).syncIDs(); !slices.Equal(ids, []int32{0, 1, 2}) {
		t.Fatalf("b got sync ids %v", ids)
	}
	if !slices.Equal(obs.retries, []int{10110}) {
		t.Fatalf("retries = %v", obs.retries)
	}
}

func TestStreamNoReopenAfterOutput(t *testing.T) {
	d := fakeDialer{"a": {script: dieAfterFirst}, "b": {script: echo}}
	defer d.wait()
	r := New(&fakePicker{addrs: []string{"a", "b"}}, d, Options{})
	c := newClient(t.Context())
	done := runStream(r, t.Context(), c)
	sendFrame(t, c, frame(0, "f0"))
	recvOut(t, c)
	// The loader dies with the client idle: the error must come without another frame.
	start := time.Now()
	err := waitErr(t, done, 2*time.Second)
	if aserr.CodeOf(err) != 10222 || time.Since(start) > time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	if d["b"].sessionCount() != 0 {
		t.Fatal("reopened after an output")
	}
}

func TestStreamEarlyEOFIsError(t *testing.T) {
	d := fakeDialer{"a": {script: func(ctx context.Context, in <-chan *loaderpb.LoaderInput, emit func(*loaderpb.LoaderOutput)) error {
		emit(outFor(<-in))
		return nil // ends the stream without an END output
	}}}
	defer d.wait()
	c := newClient(t.Context())
	done := runStream(New(&fakePicker{addrs: []string{"a"}}, d, Options{}), t.Context(), c)
	sendFrame(t, c, frame(0, "f0"))
	if err := waitErr(t, done, 2*time.Second); aserr.CodeOf(err) != 10222 {
		t.Fatalf("err = %v", err)
	}
}

func TestStreamReplayBound(t *testing.T) {
	d := fakeDialer{"a": {script: refuseAfter(2, aserr.ErrLicenceFull)}, "b": {script: echo}}
	defer d.wait()
	c := newClient(t.Context())
	done := runStream(New(&fakePicker{addrs: []string{"a", "b"}}, d, Options{ReplayFrames: 1}), t.Context(), c)
	sendFrame(t, c, frame(0, "f0"))
	sendFrame(t, c, frame(1, "f1"))
	if err := waitErr(t, done, 2*time.Second); aserr.CodeOf(err) != 10110 {
		t.Fatalf("err = %v", err)
	}
	if d["b"].sessionCount() != 0 {
		t.Fatal("reopened without the frames to replay")
	}
}

func TestStreamCancelAbortsLoaderSession(t *testing.T) {
	d := fakeDialer{"a": {script: hang}}
	defer d.wait()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := newClient(ctx)
	done := runStream(New(&fakePicker{addrs: []string{"a"}}, d, Options{}), ctx, c)
	sendFrame(t, c, frame(0, "f0"))
	testpoll.Until(t, 2*time.Second, "the condition", func() bool { return d["a"].sessionCount() == 1 && len(d["a"].session(0).syncIDs()) == 1 })
	cancel()
	if err := waitErr(t, done, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-d["a"].session(0).ctx.Done():
	default:
		t.Fatal("loader session not cancelled")
	}
}

func TestStreamClientAbortAbortsLoaderSession(t *testing.T) {
	d := fakeDialer{"a": {script: hang}}
	defer d.wait()
	c := newClient(t.Context())
	done := runStream(New(&fakePicker{addrs: []string{"a"}}, d, Options{}), t.Context(), c)
	sendFrame(t, c, frame(0, "f0"))
	testpoll.Until(t, 2*time.Second, "the condition", func() bool { return d["a"].sessionCount() == 1 })
	c.recvErr <- errors.New("socket reset")
	if err := waitErr(t, done, time.Second); err == nil {
		t.Fatal("no error after client abort")
	}
	select {
	case <-d["a"].session(0).ctx.Done():
	default:
		t.Fatal("loader session not cancelled")
	}
}

func TestStreamBadStatusAndEmptyClient(t *testing.T) {
	d := fakeDialer{"a": {script: echo}}
	defer d.wait()
	r := New(&fakePicker{addrs: []string{"a"}}, d, Options{})
	c := newClient(t.Context())
	done := runStream(r, t.Context(), c)
	sendFrame(t, c, frame(3, "once in a stream"))
	if err := waitErr(t, done, 2*time.Second); aserr.CodeOf(err) != 10163 {
		t.Fatalf("err = %v", err)
	}
	c2 := newClient(t.Context())
	done2 := runStream(r, t.Context(), c2)
	close(c2.frames)
	if err := waitErr(t, done2, 2*time.Second); err != nil {
		t.Fatalf("empty session err = %v", err)
	}
}

func TestStreamHalfCloseAfterReplay(t *testing.T) {
	d := fakeDialer{"a": {script: refuseAfter(1, aserr.ErrNetwork)}, "b": {script: echo}}
	defer d.wait()
	c := newClient(t.Context())
	done := runStream(New(&fakePicker{addrs: []string{"a", "b"}}, d, Options{}), t.Context(), c)
	sendFrame(t, c, frame(0, "f0"))
	sendFrame(t, c, frame(2, "f1"))
	close(c.frames)
	var last *loaderpb.LoaderOutput
	for last == nil || last.Status != loaderpb.Status_STATUS_END {
		last = recvOut(t, c)
	}
	if err := waitErr(t, done, 2*time.Second); err != nil {
		t.Fatal(err)
	}
}
