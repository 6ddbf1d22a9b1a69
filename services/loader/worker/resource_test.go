package worker

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/loader/engine"
)

// Resources of the test engine (in the child process): data "refuse" is refused with
// 30004; every session output carries the data of its psr ids in attribute "res".
var (
	testResMu sync.Mutex
	testRes   = map[uint32]string{}
)

func (e *testEngine) LoadResource(_ context.Context, id uint32, data []engine.Payload) error {
	if len(data) != 1 || data[0].Type != engine.DataOther {
		return aserr.New(30004, "want one DataOther payload")
	}
	if string(data[0].Data) == "refuse" {
		return aserr.New(30004, "resource refused")
	}
	testResMu.Lock()
	defer testResMu.Unlock()
	testRes[id] = string(data[0].Data)
	return nil
}

func (e *testEngine) UnloadResource(_ context.Context, id uint32) error {
	testResMu.Lock()
	defer testResMu.Unlock()
	delete(testRes, id)
	return nil
}

func resOf(ids []uint32) string {
	testResMu.Lock()
	defer testResMu.Unlock()
	var parts []string
	for _, id := range ids {
		parts = append(parts, testRes[id])
	}
	return strings.Join(parts, ",")
}

func resPayload(s string) []engine.Payload {
	return []engine.Payload{{Meta: engine.Meta{Name: "hw", Type: engine.DataOther, Attrs: map[string]string{"app_id": "a"}}, Data: []byte(s)}}
}

func TestCodecResources(t *testing.T) {
	var e Encoder
	data := resPayload("hot words")
	e.LoadRes(0xfeedbeef, data)
	// Wire format: uint32 id (big-endian), then the payload list as in a Request.
	var want Encoder
	want.u32(0xfeedbeef)
	want.payloads(data)
	if !bytes.Equal(e.B, want.B) || !bytes.Equal(e.B[:4], []byte{0xfe, 0xed, 0xbe, 0xef}) {
		t.Fatalf("load res encoding % x", e.B)
	}
	d := newDecoder(e.B)
	id, got := d.LoadRes()
	if err := d.Done(); err != nil || id != 0xfeedbeef || !reflect.DeepEqual(got, data) {
		t.Fatalf("load res decode = %d %+v %v", id, got, err)
	}
	e = Encoder{}
	e.ResID(7)
	if !bytes.Equal(e.B, []byte{0, 0, 0, 7}) {
		t.Fatalf("unload res encoding % x", e.B)
	}
	if d := newDecoder(e.B); d.ResID() != 7 || d.Done() != nil {
		t.Fatal("unload res decode")
	}
	if MsgLoadRes != 7 || MsgUnloadRes != 8 || MsgLoadRes.String() != "loadres" {
		t.Fatal("message numbers changed")
	}
	short := newDecoder([]byte{0, 0, 0})
	short.ResID()
	if !errors.Is(short.Done(), errMalformed) {
		t.Fatal("short resource id accepted")
	}
}

func FuzzDecodeLoadRes(f *testing.F) {
	var e Encoder
	e.LoadRes(3, resPayload("x"))
	f.Add(e.B)
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := newDecoder(b)
		id, data := d.LoadRes()
		if d.Done() == nil {
			var e Encoder
			e.LoadRes(id, data)
			d2 := newDecoder(e.B)
			id2, data2 := d2.LoadRes()
			if d2.Done() != nil || id2 != id || !reflect.DeepEqual(data2, data) {
				t.Fatalf("re-encode mismatch: %d %+v vs %d %+v", id2, data2, id, data)
			}
		}
		d = newDecoder(b)
		d.ResID()
		_ = d.Done()
	})
}

// sessionRes opens two sessions (the least-loaded rule puts them on different workers)
// with psr ids and returns what each worker reports for them.
func sessionRes(t *testing.T, p *Pool, psr []uint32) []string {
	t.Helper()
	var out []string
	var open []engine.Session
	defer func() {
		for _, s := range open {
			_ = s.Close()
		}
	}()
	cs := []*collector{newCollector(), newCollector()}
	for i := range 2 {
		s, err := p.NewSession(t.Context(), engine.SessionParams{Tag: string(rune('a' + i)), PsrIDs: psr}, cs[i].emit)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	pids := map[string]bool{}
	for i, s := range open {
		if err := s.Write(t.Context(), engine.Frame{Status: engine.StatusBegin, Inputs: in("text", "x")}); err != nil {
			t.Fatal(err)
		}
		r := cs[i].next(t)
		pids[r.Outputs[0].Attrs["pid"]] = true
		out = append(out, r.Outputs[0].Attrs["res"])
	}
	if len(pids) != 2 {
		t.Fatalf("both sessions on one worker: %v", pids)
	}
	return out
}

func TestPoolResourcesOnEveryWorkerAndAfterRestart(t *testing.T) {
	p := startPool(t, 2, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := p.LoadResource(ctx, 7, resPayload("hot words")); err != nil {
		t.Fatal(err)
	}
	if got := sessionRes(t, p, []uint32{7}); got[0] != "hot words" || got[1] != "hot words" {
		t.Fatalf("resource on the workers = %q", got)
	}
	// A refused resource fails with the engine's code and is not kept.
	if err := p.LoadResource(ctx, 8, resPayload("refuse")); aserr.CodeOf(err) != 30004 {
		t.Fatalf("refused load: %v, want 30004", err)
	}
	// A restarted worker reloads resource 7 before it takes work.
	before := p.PIDs()
	if _, err := once(t, p, "crash", ""); !errors.Is(err, aserr.ErrEngineCrashed) {
		t.Fatalf("crash: %v", err)
	}
	testpoll.Until(t, 10*time.Second, "both workers live again", func() bool {
		now := p.PIDs()
		return p.Live() == 2 && (now[0] != before[0] || now[1] != before[1])
	})
	if got := sessionRes(t, p, []uint32{7, 8}); got[0] != "hot words," || got[1] != "hot words," {
		t.Fatalf("resources after restart = %q", got)
	}
	if err := p.UnloadResource(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if got := sessionRes(t, p, []uint32{7}); got[0] != "" || got[1] != "" {
		t.Fatalf("after unload = %q", got)
	}
}
