package config

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/internal/fanout"
)

var ctx = context.Background()

func key(file string) Key {
	return Key{Project: "asf", Group: "default", Service: "atom", Version: "1", File: file}
}

func next(t *testing.T, w *Watch) Event {
	t.Helper()
	select {
	case ev, ok := <-w.C():
		if !ok {
			t.Fatalf("watch closed: %v", w.Err())
		}
		return ev
	case <-time.After(2 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

func none(t *testing.T, w *Watch) {
	t.Helper()
	if n := len(w.C()); n != 0 {
		t.Fatalf("%d unexpected events, first %+v", n, <-w.C())
	}
}

func push(t *testing.T, c *Center, k Key, content, gray string) File {
	t.Helper()
	f, err := c.Push(ctx, k, []byte(content), "", gray)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRevisionsAndHistory(t *testing.T) {
	c := New(NewMemStore(), Options{})
	k := key("atom.toml")
	for i := 1; i <= 3; i++ {
		f := push(t, c, k, string(rune('a'+i-1)), "")
		if f.Revision != int64(i) {
			t.Fatalf("push %d got revision %d", i, f.Revision)
		}
	}
	f, err := c.Get(ctx, k, Caller{})
	if err != nil || f.Revision != 3 || string(f.Content) != "c" {
		t.Fatalf("get %+v %v", f, err)
	}
	h, err := c.History(ctx, k)
	if err != nil || len(h) != 3 || h[0].Revision != 1 || string(h[0].Content) != "a" {
		t.Fatalf("history %+v %v", h, err)
	}
}

func TestRollbackPushesNewRevision(t *testing.T) {
	c := New(NewMemStore(), Options{})
	k := key("atom.toml")
	push(t, c, k, "v1", "")
	push(t, c, k, "v2", "")
	w, err := c.Watch(ctx, k, false, Caller{}, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if ev := next(t, w); ev.Type != EventSnapshot || ev.Files[0].Revision != 2 {
		t.Fatalf("snapshot %+v", ev)
	}
	f, err := c.Rollback(ctx, k, 1)
	if err != nil || f.Revision != 3 || string(f.Content) != "v1" {
		t.Fatalf("rollback %+v %v", f, err)
	}
	if ev := next(t, w); ev.Type != EventUpdated || ev.Files[0].Revision != 3 || string(ev.Files[0].Content) != "v1" {
		t.Fatalf("rollback not pushed to watchers: %+v", ev)
	}
	if _, err := c.Rollback(ctx, k, 9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rollback to a missing revision: %v", err)
	}
	if h, _ := c.History(ctx, k); len(h) != 3 {
		t.Fatalf("history len %d", len(h))
	}
}

func TestNotFoundAndInvalid(t *testing.T) {
	c := New(NewMemStore(), Options{})
	if _, err := c.Get(ctx, key("nope"), Caller{}); aserr.CodeOf(err) != aserr.ErrNotFound.Code {
		t.Fatalf("get missing: %v", err)
	}
	if err := c.Delete(ctx, key("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	if _, err := c.Push(ctx, Key{Project: "p"}, nil, "", ""); aserr.CodeOf(err) != aserr.ErrInvalidParam.Code {
		t.Fatalf("push invalid: %v", err)
	}
	if _, err := c.Watch(ctx, key(""), false, Caller{}, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("exact watch without file: %v", err)
	}
}

func TestPrefixWatch(t *testing.T) {
	c := New(NewMemStore(), Options{})
	push(t, c, key("schema_a.json"), "A", "")
	push(t, c, key("atom.toml"), "x", "")
	w, err := c.Watch(ctx, key("schema_"), true, Caller{}, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ev := next(t, w)
	if ev.Type != EventSnapshot || len(ev.Files) != 1 || ev.Files[0].Key.File != "schema_a.json" {
		t.Fatalf("snapshot %+v", ev)
	}
	push(t, c, key("atom.toml"), "y", "") // not matching
	other := key("schema_b.json")
	other.Version = "2" // other directory
	push(t, c, other, "B2", "")
	push(t, c, key("schema_b.json"), "B", "")
	ev = next(t, w)
	if ev.Type != EventUpdated || ev.Files[0].Key.File != "schema_b.json" || string(ev.Files[0].Content) != "B" {
		t.Fatalf("added file: %+v", ev)
	}
	if err := c.Delete(ctx, key("schema_a.json")); err != nil {
		t.Fatal(err)
	}
	ev = next(t, w)
	if ev.Type != EventRemoved || ev.Files[0].Key.File != "schema_a.json" {
		t.Fatalf("removed: %+v", ev)
	}
	none(t, w)
}

func TestGray(t *testing.T) {
	c := New(NewMemStore(), Options{})
	k := key("atom.toml")
	push(t, c, k, "stable", "")
	canary := Caller{Addr: "10.0.0.2:1", Labels: map[string]string{GrayLabel: "canary"}}
	plain := Caller{Addr: "10.0.0.1:1"}
	wc, _ := c.Watch(ctx, k, false, canary, 8)
	wp, _ := c.Watch(ctx, k, false, plain, 8)
	defer wc.Close()
	defer wp.Close()
	next(t, wc)
	next(t, wp)

	g := push(t, c, k, "new", "canary")
	if g.Revision != 2 || !g.Gray {
		t.Fatalf("gray push %+v", g)
	}
	if f, _ := c.Get(ctx, k, canary); f.Revision != 2 || !f.Gray || string(f.Content) != "new" {
		t.Fatalf("canary gets %+v", f)
	}
	if f, _ := c.Get(ctx, k, plain); f.Revision != 1 || f.Gray {
		t.Fatalf("plain caller gets %+v", f)
	}
	if ev := next(t, wc); ev.Type != EventUpdated || ev.Files[0].Revision != 2 || !ev.Files[0].Gray {
		t.Fatalf("canary watcher: %+v", ev)
	}
	none(t, wp)

	// A full release supersedes the gray revision for everyone.
	push(t, c, k, "final", "")
	for _, w := range []*Watch{wc, wp} {
		if ev := next(t, w); ev.Type != EventUpdated || ev.Files[0].Revision != 3 || ev.Files[0].Gray {
			t.Fatalf("release: %+v", ev)
		}
	}
	if f, _ := c.Get(ctx, k, canary); f.Revision != 3 {
		t.Fatalf("canary after release gets %d", f.Revision)
	}
}

func TestGrayOnlyFileIsHiddenFromOthers(t *testing.T) {
	c := New(NewMemStore(), Options{})
	k := key("new.toml")
	push(t, c, k, "g", "canary")
	if _, err := c.Get(ctx, k, Caller{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("plain caller: %v", err)
	}
	if f, err := c.Get(ctx, k, Caller{Labels: map[string]string{GrayLabel: "canary"}}); err != nil || f.Revision != 1 {
		t.Fatalf("canary: %+v %v", f, err)
	}
}

func TestChangesFeedAndReportApplied(t *testing.T) {
	c := New(NewMemStore(), Options{})
	ch, _ := c.Changes(8)
	defer ch.Close()
	next(t, ch)
	k := key("atom.toml")
	push(t, c, k, "g", "canary")
	if ev := next(t, ch); ev.Type != EventUpdated || ev.Files[0].GrayGroup != "canary" {
		t.Fatalf("changes: %+v", ev)
	}
	if err := c.ReportApplied(ctx, k, 1, Caller{Addr: "b:1"}, false, "parse error"); err != nil {
		t.Fatal(err)
	}
	_ = c.ReportApplied(ctx, k, 1, Caller{Addr: "a:1"}, true, "")
	_ = c.ReportApplied(ctx, k, 2, Caller{Addr: "a:1"}, true, "")
	got := c.Applied(k)
	if len(got) != 2 || got[0].Addr != "a:1" || got[0].Revision != 2 || got[1].Applied || got[1].Reason != "parse error" {
		t.Fatalf("applied %+v", got)
	}
	if err := c.ReportApplied(ctx, k, 1, Caller{}, true, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("report without addr: %v", err)
	}
	_ = c.Delete(ctx, k)
	if ev := next(t, ch); ev.Type != EventRemoved {
		t.Fatalf("changes delete: %+v", ev)
	}
}

func TestSlowConfigWatcherDropped(t *testing.T) {
	c := New(NewMemStore(), Options{})
	w, _ := c.Watch(ctx, key("f"), false, Caller{}, 1)
	for i := 0; i < 5; i++ {
		push(t, c, key("f"), "x", "")
	}
	for range w.C() {
	}
	if w.Err() != fanout.ErrOverflow {
		t.Fatalf("err %v", w.Err())
	}
}

func TestKeyMatches(t *testing.T) {
	if !key("schema_a").Matches(key("schema_a"), false) || key("schema_").Matches(key("schema_a"), false) {
		t.Fatal("exact match")
	}
	if !key("").Matches(key("anything"), true) || key("x").Matches(key("y"), true) {
		t.Fatal("prefix match")
	}
}
