package session

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/licence"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newManager(t *testing.T, max int, cfg Config) *Manager {
	t.Helper()
	e := engine.NewEcho()
	if err := e.Init(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	m := NewManager(e, licence.New(max, 0, nil), cfg, zerolog.Nop())
	t.Cleanup(m.Close)
	return m
}

func text(name, s string) []engine.Payload {
	return []engine.Payload{{Meta: engine.Meta{Name: name}, Data: []byte(s)}}
}

func recvAll(t *testing.T, s *Session) ([]engine.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []engine.Result
	for {
		r, err := s.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

func TestSessionEchoInOrder(t *testing.T) {
	m := newManager(t, 1, Config{})
	ctx := context.Background()
	s, err := m.Open(ctx, engine.SessionParams{Tag: "sid1"})
	if err != nil {
		t.Fatal(err)
	}
	// Sent out of order: 1, 2(END), 0.
	for _, f := range []engine.Frame{
		{SyncID: 1, Status: engine.StatusContinue, Inputs: text("a", "1")},
		{SyncID: 2, Status: engine.StatusEnd, Inputs: text("a", "2")},
		{SyncID: 0, Status: engine.StatusBegin, Inputs: text("a", "0")},
	} {
		if err := s.Write(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	res, err := recvAll(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results", len(res))
	}
	for i, r := range res {
		if string(r.Outputs[0].Data) != string(rune('0'+i)) || r.Status != []engine.Status{0, 1, 2}[i] {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	if m.Pool().InUse() != 0 || m.Active() != 0 {
		t.Fatalf("after END: in use %d, active %d", m.Pool().InUse(), m.Active())
	}
}

func TestSessionGapSkippedAfterWait(t *testing.T) {
	m := newManager(t, 1, Config{ReorderWait: 20 * time.Millisecond})
	ctx := context.Background()
	s, err := m.Open(ctx, engine.SessionParams{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Write(ctx, engine.Frame{SyncID: 0, Status: engine.StatusBegin, Inputs: text("a", "0")})
	_ = s.Write(ctx, engine.Frame{SyncID: 2, Status: engine.StatusEnd, Inputs: text("a", "2")}) // 1 never comes
	res, err := recvAll(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || string(res[1].Outputs[0].Data) != "2" || res[1].Status != engine.StatusEnd {
		t.Fatalf("results = %+v", res)
	}
}

func TestLicenceFull(t *testing.T) {
	m := newManager(t, 1, Config{})
	ctx := context.Background()
	s, err := m.Open(ctx, engine.SessionParams{Tag: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Open(ctx, engine.SessionParams{Tag: "b"}); !errors.Is(err, aserr.ErrLicenceFull) {
		t.Fatalf("second open: %v, want 10110", err)
	}
	if _, err := m.Once(ctx, engine.Request{}); aserr.CodeOf(err) != 10110 {
		t.Fatalf("once while full: %v, want 10110", err)
	}
	s.Abort()
	if m.Pool().InUse() != 0 {
		t.Fatal("abort did not free the slot")
	}
	if _, err := m.Once(ctx, engine.Request{Inputs: text("a", "x")}); err != nil {
		t.Fatalf("once after abort: %v", err)
	}
}

func TestRepeatedSessionTag(t *testing.T) {
	m := newManager(t, 2, Config{})
	if _, err := m.Open(context.Background(), engine.SessionParams{Tag: "same"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Open(context.Background(), engine.SessionParams{Tag: "same"}); aserr.CodeOf(err) != 10105 {
		t.Fatalf("repeated tag: %v, want 10105", err)
	}
	if m.Pool().InUse() != 1 {
		t.Fatalf("in use = %d, want 1", m.Pool().InUse())
	}
}

func TestIdleTTLExpires(t *testing.T) {
	m := newManager(t, 1, Config{IdleTTL: 30 * time.Millisecond})
	ctx := context.Background()
	s, err := m.Open(ctx, engine.SessionParams{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Write(ctx, engine.Frame{SyncID: 0, Status: engine.StatusBegin, Inputs: text("a", "0")})
	res, err := recvAll(t, s)
	if aserr.CodeOf(err) != aserr.ErrSessionTimeout.Code {
		t.Fatalf("err = %v, want 10114", err)
	}
	if len(res) != 1 {
		t.Fatalf("results before expiry = %d", len(res))
	}
	testpoll.Until(t, time.Second, "the condition", func() bool { return m.Pool().InUse() == 0 })
	if err := s.Write(ctx, engine.Frame{SyncID: 1}); err == nil {
		t.Fatal("write after expiry accepted")
	}
}

func TestProtocolErrorEndsSession(t *testing.T) {
	m := newManager(t, 1, Config{})
	ctx := context.Background()
	s, _ := m.Open(ctx, engine.SessionParams{})
	_ = s.Write(ctx, engine.Frame{SyncID: 0, Inputs: text("a", "0")})
	_ = s.Write(ctx, engine.Frame{SyncID: 0, Inputs: text("a", "0")})
	_, err := recvAll(t, s)
	if aserr.CodeOf(err) != 10009 {
		t.Fatalf("duplicate sync_id: %v, want 10009", err)
	}
	testpoll.Until(t, time.Second, "the condition", func() bool { return m.Pool().InUse() == 0 })
}

func TestUnexpectedOutput(t *testing.T) {
	m := newManager(t, 1, Config{})
	_, err := m.Once(context.Background(), engine.Request{
		Inputs: text("a", "x"), Expect: []engine.Meta{{Name: "p"}, {Name: "q"}},
	})
	if aserr.CodeOf(err) != 10106 {
		t.Fatalf("err = %v, want 10106", err)
	}
}

func TestRefuseAndWait(t *testing.T) {
	m := newManager(t, 2, Config{})
	ctx := context.Background()
	s, _ := m.Open(ctx, engine.SessionParams{})
	m.Refuse()
	if _, err := m.Open(ctx, engine.SessionParams{}); aserr.CodeOf(err) != 10110 {
		t.Fatalf("open while draining: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Wait(ctx) }()
	_ = s.Write(ctx, engine.Frame{SyncID: 0, Status: engine.StatusEnd, Inputs: text("a", "x")})
	if _, err := recvAll(t, s); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
