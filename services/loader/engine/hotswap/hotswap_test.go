package hotswap_test

import (
	"context"
	"errors"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/engine/hotswap"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func once(t *testing.T, e engine.Engine) string {
	t.Helper()
	resp, err := e.Once(context.Background(), engine.Request{Inputs: []engine.Payload{{Meta: engine.Meta{Name: "text"}, Data: []byte("x")}}})
	if err != nil {
		t.Fatalf("once: %v", err)
	}
	return resp.Outputs[0].Attrs["cfg"]
}

func TestSwapMovesNewWorkAndKeepsOpenSessions(t *testing.T) {
	ctx := context.Background()
	e := hotswap.New(engine.NewEcho(), hotswap.Options{Log: zerolog.Nop()})
	if err := e.Init(ctx, map[string]string{"attr.cfg": "a"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	s, err := e.NewSession(ctx, engine.SessionParams{Tag: "s1"}, func(r engine.Result) { got = append(got, r.Outputs[0].Attrs["cfg"]) })
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := hotswap.Of(e)
	if err := hs.Swap(ctx, engine.NewEcho(), map[string]string{"attr.cfg": "b"}); err != nil {
		t.Fatalf("swap: %v", err)
	}
	if v := once(t, e); v != "b" {
		t.Fatalf("once after swap served by %q, want the new instance b", v)
	}
	// The session opened before the swap stays on the old instance until it closes.
	if err := s.Write(ctx, engine.Frame{Status: engine.StatusEnd, Inputs: []engine.Payload{{Meta: engine.Meta{Name: "text"}, Data: []byte("y")}}}); err != nil {
		t.Fatalf("write on the old instance: %v", err)
	}
	if len(got) != 1 || got[0] != "a" {
		t.Fatalf("session results %v, want [a]", got)
	}
	_ = s.Close()
	if hs.Generation() != 2 {
		t.Fatalf("generation %d, want 2", hs.Generation())
	}
	if err := e.Fini(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Once(ctx, engine.Request{}); !errors.Is(err, aserr.ErrReleased) {
		t.Fatalf("once after fini: %v, want 10101", err)
	}
}

func TestFailedSwapKeepsTheRunningInstance(t *testing.T) {
	ctx := context.Background()
	e := hotswap.New(engine.NewEcho(), hotswap.Options{Log: zerolog.Nop()})
	if err := e.Init(ctx, map[string]string{"attr.cfg": "a"}); err != nil {
		t.Fatal(err)
	}
	defer e.Fini(ctx)
	hs, _ := hotswap.Of(e)
	err := hs.Swap(ctx, engine.NewEcho(), map[string]string{"init-error": "model missing"})
	if !errors.Is(err, aserr.ErrInvalidParam) {
		t.Fatalf("swap to a broken config: %v, want 10107", err)
	}
	if v := once(t, e); v != "a" {
		t.Fatalf("served by %q after a failed swap, want the running instance a", v)
	}
	if hs.Generation() != 1 {
		t.Fatalf("generation %d, want 1", hs.Generation())
	}
}

// resEcho is an echo engine that records the resources loaded into it.
type resEcho struct {
	*engine.Echo
	loaded map[uint32]string
}

func newResEcho() *resEcho { return &resEcho{Echo: engine.NewEcho(), loaded: map[uint32]string{}} }

func (r *resEcho) LoadResource(_ context.Context, id uint32, data []engine.Payload) error {
	r.loaded[id] = string(data[0].Data)
	return nil
}

func (r *resEcho) UnloadResource(_ context.Context, id uint32) error {
	delete(r.loaded, id)
	return nil
}

func TestSwapLoadsTheResourcesIntoTheNewInstance(t *testing.T) {
	ctx := context.Background()
	first, next := newResEcho(), newResEcho()
	e := hotswap.New(first, hotswap.Options{Log: zerolog.Nop()})
	rl, ok := e.(engine.ResourceLoader)
	if !ok {
		t.Fatal("an engine over a resource loader must load resources")
	}
	if _, ok := hotswap.New(engine.NewEcho(), hotswap.Options{}).(engine.ResourceLoader); ok {
		t.Fatal("an engine over echo must not claim to load resources")
	}
	if err := e.Init(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer e.Fini(ctx)
	for id, d := range map[uint32]string{1: "hot words", 2: "names"} {
		if err := rl.LoadResource(ctx, id, []engine.Payload{{Data: []byte(d)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rl.UnloadResource(ctx, 2); err != nil {
		t.Fatal(err)
	}
	hs, _ := hotswap.Of(e)
	if err := hs.Swap(ctx, next, nil); err != nil {
		t.Fatal(err)
	}
	if len(next.loaded) != 1 || next.loaded[1] != "hot words" {
		t.Fatalf("new instance holds %v, want resource 1 only", next.loaded)
	}
}
