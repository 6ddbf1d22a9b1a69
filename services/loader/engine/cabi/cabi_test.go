package cabi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/engine/cabi/cabitest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

var echoSO string // built once in TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cabi-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	echoSO, err = cabitest.BuildEchoTo(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipping: ", err)
		os.Exit(0)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// open loads the shared example engine and initialises it; Fini at cleanup.
func open(t *testing.T, so string, opts Options, cfg map[string]string) *Engine {
	t.Helper()
	e, err := Open(so, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Init(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Fini(context.Background()); err != nil {
			t.Errorf("fini: %v", err)
		}
		if n := liveTags(); n != 0 {
			t.Errorf("%d usrTags still registered", n)
		}
	})
	return e
}

func text(name, s string) engine.Payload {
	return engine.Payload{Meta: engine.Meta{Name: name, Type: engine.DataText, Attrs: map[string]string{"encoding": "utf8"}}, Data: []byte(s)}
}

func TestOpenMissingRequiredSymbol(t *testing.T) {
	so := cabitest.BuildEcho(t, "-DCECHO_OMIT_WRITE")
	_, err := Open(so, Options{})
	if err == nil || !strings.Contains(err.Error(), "wrapperWrite") {
		t.Fatalf("err = %v, want one naming wrapperWrite", err)
	}
	if aserr.CodeOf(err) != aserr.ErrInvalidParam.Code {
		t.Fatalf("code = %d", aserr.CodeOf(err))
	}
	if _, err := Open("/nonexistent/libwrapper.so", Options{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/libwrapper.so") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenWithoutOptionalSymbols(t *testing.T) {
	so := cabitest.BuildEcho(t, "-DCECHO_OMIT_OPTIONAL")
	e := open(t, so, Options{Async: true}, nil)
	for _, s := range Optional {
		if e.Has(s) {
			t.Errorf("%s present", s)
		}
	}
	// Async requested but no wrapperExecAsync: once falls back to wrapperExec.
	resp, err := e.Once(t.Context(), engine.Request{Tag: "t1", Inputs: []engine.Payload{text("text", "hi")}})
	if err != nil || string(resp.Outputs[0].Data) != "hi" {
		t.Fatalf("once = %+v, %v", resp, err)
	}
	if err := e.LoadResource(t.Context(), 1, nil); !errors.Is(err, aserr.ErrInvalidOp) {
		t.Fatalf("LoadResource err = %v, want 10003", err)
	}
}

func TestOnceSync(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs syncBuf
	e := open(t, echoSO, Options{Registry: reg, Log: zerolog.New(&logs).Level(zerolog.DebugLevel)}, map[string]string{"name": "unit"})
	if v := e.Version(); v != "c-echo 1.0.0 unit" {
		t.Fatalf("version %q (config not passed?)", v)
	}
	resp, err := e.Once(t.Context(), engine.Request{Tag: "sid-once", Params: map[string]string{"prefix": ">"},
		Inputs: []engine.Payload{text("a", "one"), {Meta: engine.Meta{Name: "b", Type: engine.DataAudio}, Data: []byte{0, 1, 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Outputs) != 2 {
		t.Fatalf("outputs %+v", resp.Outputs)
	}
	a, b := resp.Outputs[0], resp.Outputs[1]
	if a.Name != "a" || string(a.Data) != ">one" || a.Type != engine.DataText || a.Attrs["encoding"] != "utf8" {
		t.Fatalf("a = %+v", a)
	}
	if b.Name != "b" || !bytes.Equal(b.Data, []byte(">\x00\x01\x02")) || b.Type != engine.DataAudio {
		t.Fatalf("b = %+v", b)
	}
	if got := testutil.ToFloat64(e.meter.WithLabelValues("echo_bytes")); got != 6 {
		t.Fatalf("meter echo_bytes = %v, want 6", got)
	}
	if l := logs.String(); !strings.Contains(l, `"sid":"sid-once"`) || !strings.Contains(l, "once-sync") {
		t.Fatalf("trace log missing: %s", l)
	}
}

func TestOnceAsync(t *testing.T) {
	e := open(t, echoSO, Options{Async: true}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("msg-%d", i)
			resp, err := e.Once(t.Context(), engine.Request{Tag: "same-sid", Inputs: []engine.Payload{text("text", want)}})
			if err == nil && (len(resp.Outputs) != 1 || string(resp.Outputs[0].Data) != want) {
				err = fmt.Errorf("outputs %+v, want %q", resp.Outputs, want)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestOnceAsyncNoCallbackTimesOut(t *testing.T) {
	e := open(t, echoSO, Options{Async: true}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := e.Once(ctx, engine.Request{Tag: "t", Params: map[string]string{"drop": "1"}, Inputs: []engine.Payload{text("text", "x")}})
	if aserr.CodeOf(err) != aserr.ErrOnceTimeout.Code {
		t.Fatalf("err = %v, want 10102", err)
	}
}

func TestEngineErrors(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			e := open(t, echoSO, Options{Async: async}, nil)
			in := []engine.Payload{text("text", "x")}
			kind := ErrExec
			if async {
				kind = ErrExecAsync
			}
			for _, fail := range []string{"1", "async"} {
				if fail == "async" && !async {
					continue
				}
				_, err := e.Once(t.Context(), engine.Request{Params: map[string]string{"fail": fail}, Inputs: in})
				checkEngineErr(t, err, 20001, "failure requested by parameter fail", kind)
			}
			_, err := e.NewSession(t.Context(), engine.SessionParams{Params: map[string]string{"fail": "create"}}, func(engine.Result) {})
			checkEngineErr(t, err, 20001, "failure requested", ErrCreate)

			s, err := e.NewSession(t.Context(), engine.SessionParams{Params: map[string]string{"fail": "1"}}, func(engine.Result) {})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Write(t.Context(), engine.Frame{Status: engine.StatusBegin, Inputs: in})
			checkEngineErr(t, err, 20001, "failure requested", ErrWrite)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func checkEngineErr(t *testing.T, err error, code int, text string, kind *aserr.Error) {
	t.Helper()
	if aserr.CodeOf(err) != code || !strings.Contains(aserr.MessageOf(err), text) || !errors.Is(err, kind) {
		t.Fatalf("err = %v (code %d, message %q), want engine code %d with %q and %d", err, aserr.CodeOf(err), aserr.MessageOf(err), code, text, kind.Code)
	}
}

func TestInitError(t *testing.T) {
	so := cabitest.BuildEcho(t)
	e, err := Open(so, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Init(t.Context(), map[string]string{"init_fail": "1"})
	checkEngineErr(t, err, 20002, "init failure", ErrInit)
	if _, err := e.Once(t.Context(), engine.Request{}); !errors.Is(err, aserr.ErrReleased) {
		t.Fatalf("once before init: %v", err)
	}
}

type collector struct {
	mu  sync.Mutex
	res []engine.Result
}

func (c *collector) emit(r engine.Result) {
	c.mu.Lock()
	c.res = append(c.res, r)
	c.mu.Unlock()
}

func (c *collector) snapshot() []engine.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]engine.Result(nil), c.res...)
}

func TestSession(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			e := open(t, echoSO, Options{Async: async}, nil)
			var c collector
			s, err := e.NewSession(t.Context(), engine.SessionParams{Tag: "sid-s", Params: map[string]string{"prefix": "#"}}, c.emit)
			if err != nil {
				t.Fatal(err)
			}
			frames := []engine.Frame{
				{SyncID: 0, Status: engine.StatusBegin, Inputs: []engine.Payload{text("audio", "f0")}},
				{SyncID: 1, Status: engine.StatusContinue, Inputs: []engine.Payload{text("audio", "f1")}},
				{SyncID: 2, Status: engine.StatusEnd, Inputs: []engine.Payload{text("audio", "f2")}},
			}
			for _, f := range frames {
				if err := s.Write(t.Context(), f); err != nil {
					t.Fatal(err)
				}
			}
			testpoll.Until(t, 2*time.Second, "the condition", func() bool { return len(c.snapshot()) == 3 })
			for i, r := range c.snapshot() {
				if r.Err != nil || r.Status != frames[i].Status || len(r.Outputs) != 1 || string(r.Outputs[0].Data) != "#f"+fmt.Sprint(i) {
					t.Fatalf("result %d = %+v", i, r)
				}
				if r.Outputs[0].Attrs["seq"] != fmt.Sprint(i) {
					t.Fatalf("result %d seq attr = %q", i, r.Outputs[0].Attrs["seq"])
				}
			}
			if d := s.(*Session).DebugInfo(); !strings.Contains(d, "writes=3") {
				t.Fatalf("debug info %q", d)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSessionAsyncCallbackError(t *testing.T) {
	e := open(t, echoSO, Options{Async: true}, nil)
	var c collector
	s, err := e.NewSession(t.Context(), engine.SessionParams{Params: map[string]string{"fail": "async"}}, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), engine.Frame{Status: engine.StatusBegin, Inputs: []engine.Payload{text("a", "x")}}); err != nil {
		t.Fatal(err)
	}
	testpoll.Until(t, 2*time.Second, "the condition", func() bool { return len(c.snapshot()) == 1 })
	checkEngineErr(t, c.snapshot()[0].Err, 20001, "failure requested", ErrRead)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestResources(t *testing.T) {
	e := open(t, echoSO, Options{}, nil)
	res := []engine.Payload{{Meta: engine.Meta{Name: "res", Type: engine.DataOther}, Data: []byte("hot-words")}}
	if err := e.LoadResource(t.Context(), 7, res); err != nil {
		t.Fatal(err)
	}
	resp, err := e.Once(t.Context(), engine.Request{PsrIDs: []uint32{3, 7}, Inputs: []engine.Payload{text("text", "x")}})
	if err != nil || resp.Outputs[0].Attrs["res"] != "hot-words" {
		t.Fatalf("once with psr 7 = %+v, %v", resp, err)
	}
	var c collector
	s, err := e.NewSession(t.Context(), engine.SessionParams{PsrIDs: []uint32{7}}, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), engine.Frame{Status: engine.StatusEnd, Inputs: []engine.Payload{text("text", "y")}}); err != nil {
		t.Fatal(err)
	}
	if r := c.snapshot(); len(r) != 1 || r[0].Outputs[0].Attrs["res"] != "hot-words" {
		t.Fatalf("session with psr 7 = %+v", r)
	}
	_ = s.Close()
	if err := e.UnloadResource(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	err = e.UnloadResource(t.Context(), 7)
	checkEngineErr(t, err, 20005, "not loaded", ErrUnloadRes)
}

func TestRoundTrip(t *testing.T) {
	in := []engine.Payload{text("a", "1"), {Meta: engine.Meta{Name: "", Type: engine.DataVideo}, Data: []byte{}}}
	out, st := roundTrip(in, engine.StatusContinue)
	if st != engine.StatusContinue || len(out) != 2 || out[0].Attrs["encoding"] != "utf8" || out[1].Type != engine.DataVideo {
		t.Fatalf("round trip = %+v %v", out, st)
	}
}

func FuzzListRoundTrip(f *testing.F) {
	f.Add("text", []byte("hello"), uint8(0), "encoding", "utf8", uint8(2))
	f.Add("", []byte{}, uint8(9), "", "", uint8(3))
	f.Fuzz(func(t *testing.T, name string, data []byte, typ uint8, k, v string, st uint8) {
		if strings.ContainsRune(name, 0) || strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			t.Skip("C strings end at NUL")
		}
		p := engine.Payload{Meta: engine.Meta{Name: name, Type: engine.DataType(typ), Attrs: map[string]string{k: v}}, Data: data}
		out, _ := roundTrip([]engine.Payload{p}, engine.Status(st%4))
		if len(out) != 1 || out[0].Name != name || !bytes.Equal(out[0].Data, data) || out[0].Attrs[k] != v {
			t.Fatalf("round trip %+v → %+v", p, out)
		}
	})
}
