// Package storetest is the conformance suite of polaris's storage backends: every
// backend (memory, bbolt, Consul) runs the same tests against its registry.Store and
// config.Store.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Stores {
//			return storetest.Stores{Registry: reg, Config: cfg, Reopen: reopen}
//		})
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/resource"
)

// Stores is one backend's pair of stores, fresh and empty.
type Stores struct {
	Registry registry.Store
	Config   config.Store
	// Resources is the backend's resource store; its tests are skipped when nil.
	Resources resource.Store
	// Reopen, when set, closes the stores and opens them again on the same data, as a
	// restarted polaris would; durable backends set it.
	Reopen func(t *testing.T) Stores
}

// Run runs the conformance suite; newStores returns fresh, empty stores for each test.
func Run(t *testing.T, newStores func(t *testing.T) Stores) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Stores)
	}{
		{"RegistryInstances", testRegistryInstances},
		{"RegistryAdmins", testRegistryAdmins},
		{"ConfigAppendAndGray", testConfigAppendAndGray},
		{"ConfigConcurrentAppend", testConfigConcurrentAppend},
		{"ConfigLargeContent", testConfigLargeContent},
		{"ConfigDeleteAndList", testConfigDeleteAndList},
		{"ConfigApplied", testConfigApplied},
		{"CenterGrayAndRollback", testCenterGrayAndRollback},
		{"ConfigHistoryRetention", testConfigHistoryRetention},
		{"Reopen", testReopen},
		{"Resources", testResources},
		{"ResourcesLarge", testResourcesLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStores(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func inst(svc, addr string) registry.Instance {
	return registry.Instance{Service: svc, Addr: addr, Version: "1.0", Kind: registry.KindProvider,
		Labels: map[string]string{"zone": "a", "weird key/with.dots": "v=1;2"}}
}

func testRegistryInstances(t *testing.T, s Stores) {
	c, st := ctx(t), s.Registry
	must(t, st.PutInstance(c, registry.Registration{Instance: inst("echo", "127.0.0.1:2"), TTL: 3 * time.Second}))
	must(t, st.PutInstance(c, registry.Registration{Instance: inst("echo", "127.0.0.1:1"), TTL: 3 * time.Second}))
	must(t, st.PutInstance(c, registry.Registration{Instance: inst("atom", "[::1]:9"), TTL: time.Second}))
	re := inst("echo", "127.0.0.1:2")
	re.Version, re.Labels = "2.0", map[string]string{"zone": "b"}
	must(t, st.PutInstance(c, registry.Registration{Instance: re, TTL: 6 * time.Second}))

	got, err := st.Instances(c)
	must(t, err)
	want := []registry.Registration{
		{Instance: inst("atom", "[::1]:9"), TTL: time.Second},
		{Instance: inst("echo", "127.0.0.1:1"), TTL: 3 * time.Second},
		{Instance: re, TTL: 6 * time.Second},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("instances:\n got %v\nwant %v", got, want)
	}
	must(t, st.DeleteInstance(c, registry.Key{Service: "echo", Addr: "127.0.0.1:1"}))
	must(t, st.DeleteInstance(c, registry.Key{Service: "nope", Addr: "127.0.0.1:1"}))
	got, err = st.Instances(c)
	must(t, err)
	if len(got) != 2 || got[1].Instance.Addr != "127.0.0.1:2" {
		t.Fatalf("after delete: %v", got)
	}
}

func testRegistryAdmins(t *testing.T, s Stores) {
	c, st := ctx(t), s.Registry
	k1, k2 := registry.Key{Service: "echo", Addr: "127.0.0.1:1"}, registry.Key{Service: "a/b", Addr: "h:2"}
	must(t, st.PutInstance(c, registry.Registration{Instance: inst(k1.Service, k1.Addr), TTL: time.Second}))
	must(t, st.PutAdmin(c, k1, registry.Admin{Enabled: true, Weight: 10}))
	must(t, st.PutAdmin(c, k1, registry.Admin{Enabled: false, Weight: 20}))
	must(t, st.PutAdmin(c, k2, registry.Admin{Enabled: true, Weight: 0}))
	must(t, st.DeleteInstance(c, k1)) // admin state outlives the registration
	got, err := st.Admins(c)
	must(t, err)
	want := map[registry.Key]registry.Admin{k1: {Enabled: false, Weight: 20}, k2: {Enabled: true, Weight: 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("admins: got %v want %v", got, want)
	}
}

func key(file string) config.Key {
	return config.Key{Project: "asf", Group: "default", Service: "atom", Version: "1", File: file}
}

func testConfigAppendAndGray(t *testing.T, s Stores) {
	c, st := ctx(t), s.Config
	k := key("atom.toml")
	if _, ok, err := st.Get(c, k); err != nil || ok {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	created := time.Unix(1700000000, 123000000).UTC()
	rec, f, err := st.Append(c, config.File{Key: k, Content: []byte("a=1"), Created: created, Comment: "first"}, 0)
	must(t, err)
	if f.Revision != 1 || rec.Current != 1 || string(f.Content) != "a=1" {
		t.Fatalf("first append: %+v %+v", rec, f)
	}
	_, f, err = st.Append(c, config.File{Key: k, Content: []byte("a=2"), Created: created, GrayGroup: "canary"}, 0)
	must(t, err)
	if f.Revision != 2 || !f.Gray || f.GrayGroup != "canary" {
		t.Fatalf("gray append: %+v", f)
	}
	_, _, err = st.Append(c, config.File{Key: k, Content: nil, Created: created, GrayGroup: "blue"}, 0)
	must(t, err)
	rec, ok, err := st.Get(c, k)
	must(t, err)
	if !ok || rec.Current != 1 || rec.Gray["canary"] != 2 || rec.Gray["blue"] != 3 || rec.Last() != 3 {
		t.Fatalf("record after gray: %+v", rec)
	}
	if r1, _ := rec.Revision(1); r1.Comment != "first" || !r1.Created.Equal(created) || r1.Key != k {
		t.Fatalf("revision 1: %+v", r1)
	}
	if r3, _ := rec.Revision(3); len(r3.Content) != 0 {
		t.Fatalf("empty content: %q", r3.Content)
	}
	// A full release retires every gray revision.
	rec, f, err = st.Append(c, config.File{Key: k, Content: []byte("a=4"), Created: created}, 0)
	must(t, err)
	if f.Revision != 4 || rec.Current != 4 || len(rec.Gray) != 0 {
		t.Fatalf("full release: %+v", rec)
	}
	rec, _, err = st.Get(c, k)
	must(t, err)
	if rec.Current != 4 || len(rec.Gray) != 0 || len(rec.Revisions) != 4 {
		t.Fatalf("stored after full release: %+v", rec)
	}
}

func testConfigConcurrentAppend(t *testing.T, s Stores) {
	c, st := ctx(t), s.Config
	k := key("race.toml")
	const writers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, _, err := st.Append(c, config.File{Key: k, Content: fmt.Appendf(nil, "w%d-%d", w, i)}, 0); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rec, _, err := st.Get(c, k)
	must(t, err)
	seen := map[string]bool{}
	for i, f := range rec.Revisions {
		if f.Revision != int64(i+1) {
			t.Fatalf("revision %d at %d: not consecutive", f.Revision, i)
		}
		seen[string(f.Content)] = true
	}
	if len(rec.Revisions) != writers*each || len(seen) != writers*each {
		t.Fatalf("%d revisions, %d distinct contents: lost pushes", len(rec.Revisions), len(seen))
	}
}

func testConfigLargeContent(t *testing.T, s Stores) {
	c, st := ctx(t), s.Config
	k := key("big.bin")
	big := make([]byte, config.DefaultMaxFileSize)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	_, _, err := st.Append(c, config.File{Key: k, Content: big}, 0)
	must(t, err)
	rec, _, err := st.Get(c, k)
	must(t, err)
	if f, _ := rec.Revision(1); !bytes.Equal(f.Content, big) {
		t.Fatalf("large content changed on the way: %d bytes back", len(f.Content))
	}
}

func testConfigDeleteAndList(t *testing.T, s Stores) {
	c, st := ctx(t), s.Config
	for _, f := range []string{"b.toml", "a.toml", "a.yaml", "x%2Fa.toml"} {
		_, _, err := st.Append(c, config.File{Key: key(f), Content: []byte(f)}, 0)
		must(t, err)
	}
	// Parts holding separators must not run into each other.
	odd := config.Key{Project: "asf", Group: "default", Service: "atom/1", Version: "x", File: "a.toml"}
	_, _, err := st.Append(c, config.File{Key: odd, Content: []byte("odd")}, 0)
	must(t, err)
	other := key("a.toml")
	other.Version = "2"
	_, _, err = st.Append(c, config.File{Key: other, Content: []byte("v2")}, 0)
	must(t, err)

	names := func(dir config.Key) []string {
		recs, err := st.List(c, dir)
		must(t, err)
		var out []string
		for _, r := range recs {
			out = append(out, r.Key.File)
			if r.Key.Dir() != dir.Dir() {
				t.Fatalf("listed %v under %v", r.Key, dir)
			}
		}
		return out
	}
	if got := fmt.Sprint(names(key(""))); got != "[a.toml a.yaml b.toml x%2Fa.toml]" {
		t.Fatalf("list dir: %s", got)
	}
	if got := fmt.Sprint(names(key("a."))); got != "[a.toml a.yaml]" {
		t.Fatalf("list prefix: %s", got)
	}
	if rec, ok, err := st.Get(c, odd); err != nil || !ok || string(rec.Revisions[0].Content) != "odd" {
		t.Fatalf("odd key: %v %v %v", rec, ok, err)
	}

	must(t, st.PutApplied(c, config.Applied{Key: key("a.toml"), Addr: "h:1", Revision: 1, Applied: true}))
	ok, err := st.Delete(c, key("a.toml"))
	must(t, err)
	if !ok {
		t.Fatal("delete of a stored file reported it missing")
	}
	if ok, err = st.Delete(c, key("a.toml")); err != nil || ok {
		t.Fatalf("second delete: %v %v", ok, err)
	}
	if _, ok, _ := st.Get(c, key("a.toml")); ok {
		t.Fatal("deleted file still there")
	}
	if as, err := st.Applied(c, key("a.toml")); err != nil || len(as) != 0 {
		t.Fatalf("apply reports outlive their file: %v %v", as, err)
	}
	if got := fmt.Sprint(names(key("a."))); got != "[a.yaml]" {
		t.Fatalf("list after delete: %s", got)
	}
	// A file pushed again after its delete starts a new history.
	_, f, err := st.Append(c, config.File{Key: key("a.toml"), Content: []byte("again")}, 0)
	must(t, err)
	if f.Revision != 1 {
		t.Fatalf("revision after delete: %d", f.Revision)
	}
}

func testConfigApplied(t *testing.T, s Stores) {
	c, st := ctx(t), s.Config
	k := key("atom.toml")
	at := time.Unix(1700000000, 0).UTC()
	must(t, st.PutApplied(c, config.Applied{Key: k, Addr: "10.0.0.2:1", Revision: 1, Applied: true, At: at}))
	must(t, st.PutApplied(c, config.Applied{Key: k, Addr: "10.0.0.1:1", Revision: 1, Applied: false, Reason: "parse error", At: at}))
	must(t, st.PutApplied(c, config.Applied{Key: k, Addr: "10.0.0.1:1", Revision: 2, Applied: true, At: at}))
	got, err := st.Applied(c, k)
	must(t, err)
	if len(got) != 2 || got[0].Addr != "10.0.0.1:1" || got[0].Revision != 2 || !got[0].Applied || got[1].Addr != "10.0.0.2:1" || !got[1].At.Equal(at) {
		t.Fatalf("applied: %+v", got)
	}
	if other, err := st.Applied(c, key("other")); err != nil || len(other) != 0 {
		t.Fatalf("applied of another file: %v %v", other, err)
	}
}

func next(t *testing.T, w *config.Watch) config.Event {
	t.Helper()
	select {
	case ev, ok := <-w.C():
		if !ok {
			t.Fatalf("watch closed: %v", w.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no config event")
	}
	return config.Event{}
}

func testCenterGrayAndRollback(t *testing.T, s Stores) {
	c := ctx(t)
	center := config.New(s.Config, config.Options{})
	defer center.Close()
	k := key("gray.toml")
	_, err := center.Push(c, k, []byte("v1"), "v1", "")
	must(t, err)
	canary, err := center.Watch(c, k, false, config.Caller{Addr: "h:1", Labels: map[string]string{config.GrayLabel: "canary"}}, 16)
	must(t, err)
	plain, err := center.Watch(c, k, false, config.Caller{Addr: "h:2"}, 16)
	must(t, err)
	next(t, canary)
	next(t, plain)

	_, err = center.Push(c, k, []byte("v2-gray"), "canary", "canary")
	must(t, err)
	if ev := next(t, canary); ev.Type != config.EventUpdated || string(ev.Files[0].Content) != "v2-gray" || !ev.Files[0].Gray {
		t.Fatalf("canary watcher: %+v", ev)
	}
	if f, err := center.Get(c, k, config.Caller{Addr: "h:2"}); err != nil || string(f.Content) != "v1" {
		t.Fatalf("plain caller during gray: %q %v", f.Content, err)
	}
	// Full release retires the canary.
	_, err = center.Push(c, k, []byte("v3"), "release", "")
	must(t, err)
	if ev := next(t, plain); string(ev.Files[0].Content) != "v3" {
		t.Fatalf("plain watcher: %+v", ev)
	}
	if ev := next(t, canary); string(ev.Files[0].Content) != "v3" || ev.Files[0].Gray {
		t.Fatalf("canary after release: %+v", ev)
	}
	// Rollback pushes revision 1's content as revision 4.
	f, err := center.Rollback(c, k, 1)
	must(t, err)
	if f.Revision != 4 || string(f.Content) != "v1" {
		t.Fatalf("rollback: %+v", f)
	}
	if ev := next(t, plain); ev.Files[0].Revision != 4 || string(ev.Files[0].Content) != "v1" {
		t.Fatalf("plain after rollback: %+v", ev)
	}
	hist, err := center.History(c, k)
	must(t, err)
	if len(hist) != 4 {
		t.Fatalf("history: %d revisions", len(hist))
	}
	if _, err := center.Rollback(c, k, 9); err == nil {
		t.Fatal("rollback to a missing revision succeeded")
	}
	if _, err := center.Push(c, k, make([]byte, config.DefaultMaxFileSize+1), "", ""); err == nil {
		t.Fatal("oversized push accepted")
	}
	if hist, _ := center.History(c, k); len(hist) != 4 {
		t.Fatalf("a refused push left a revision: %d", len(hist))
	}
}

// testConfigHistoryRetention: a file keeps at most keep revisions, the oldest pruned in
// the store (large chunked content too), revisions in force never; rollback to a pruned
// revision is ErrPruned, to one never pushed ErrNotFound; numbering goes on.
func testConfigHistoryRetention(t *testing.T, s Stores) {
	c := ctx(t)
	k := key("kept.json")
	big := bytes.Repeat([]byte("x"), 300<<10) // chunked on Consul
	_, _, err := s.Config.Append(c, config.File{Key: k, Content: []byte("gray"), GrayGroup: "canary"}, 3)
	must(t, err) // revision 1, in force for canary
	for i := 2; i <= 7; i++ {
		content := fmt.Appendf(nil, "r%d", i)
		if i == 3 {
			content = big
		}
		rec, f, err := s.Config.Append(c, config.File{Key: k, Content: content, GrayGroup: map[bool]string{true: "canary"}[i == 2]}, 3)
		must(t, err)
		if f.Revision != int64(i) || len(rec.Revisions) > 3 {
			t.Fatalf("append %d: revision %d, %d revisions kept", i, f.Revision, len(rec.Revisions))
		}
	}
	rec, ok, err := s.Config.Get(c, k)
	must(t, err)
	var got []int64
	for _, f := range rec.Revisions {
		got = append(got, f.Revision)
	}
	if !ok || fmt.Sprint(got) != "[5 6 7]" || rec.Current != 7 || !rec.Pruned(1) || !rec.Pruned(3) || rec.Pruned(8) {
		t.Fatalf("after 7 pushes keeping 3: revisions %v current %d", got, rec.Current)
	}
	// A gray revision in force is kept beyond the bound.
	_, _, err = s.Config.Append(c, config.File{Key: k, Content: []byte("g8"), GrayGroup: "blue"}, 1)
	must(t, err)
	rec, _, err = s.Config.Get(c, k)
	must(t, err)
	if _, ok := rec.Revision(7); !ok || rec.Gray["blue"] != 8 || len(rec.Revisions) != 2 {
		t.Fatalf("in-force revisions pruned: %+v", rec.Revisions)
	}
	center := config.New(s.Config, config.Options{History: 2})
	if _, err := center.Rollback(c, k, 3); !errors.Is(err, config.ErrPruned) || aserr.CodeOf(err) != 10410 {
		t.Fatalf("rollback to a pruned revision: %v", err)
	}
	if _, err := center.Revision(c, k, 4); !errors.Is(err, config.ErrPruned) {
		t.Fatalf("read of a pruned revision: %v", err)
	}
	if _, err := center.Rollback(c, k, 99); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("rollback to a revision never pushed: %v", err)
	}
	f, err := center.Rollback(c, k, 7)
	must(t, err)
	if f.Revision != 9 || string(f.Content) != "r7" {
		t.Fatalf("rollback to a kept revision: %d %q", f.Revision, f.Content)
	}
	if hist, _ := center.History(c, k); len(hist) != 2 {
		t.Fatalf("history after rollback: %d revisions, want 2", len(hist))
	}
}

func testReopen(t *testing.T, s Stores) {
	if s.Reopen == nil {
		t.Skip("backend is not durable")
	}
	c := ctx(t)
	k := key("keep.toml")
	ik := registry.Key{Service: "echo", Addr: "127.0.0.1:7"}
	must(t, s.Registry.PutInstance(c, registry.Registration{Instance: inst(ik.Service, ik.Addr), TTL: 2 * time.Second}))
	must(t, s.Registry.PutAdmin(c, ik, registry.Admin{Enabled: false, Weight: 5}))
	for _, g := range []string{"", "canary", ""} {
		_, _, err := s.Config.Append(c, config.File{Key: k, Content: []byte("c" + g), GrayGroup: g}, 0)
		must(t, err)
	}
	_, _, err := s.Config.Append(c, config.File{Key: k, Content: []byte("g"), GrayGroup: "blue"}, 0)
	must(t, err)
	must(t, s.Config.PutApplied(c, config.Applied{Key: k, Addr: "h:1", Revision: 3, Applied: true}))

	r := s.Reopen(t)
	regs, err := r.Registry.Instances(c)
	must(t, err)
	if len(regs) != 1 || regs[0].Instance.Key() != ik || regs[0].TTL != 2*time.Second || regs[0].Instance.Labels["zone"] != "a" {
		t.Fatalf("instances after reopen: %+v", regs)
	}
	admins, err := r.Registry.Admins(c)
	must(t, err)
	if admins[ik] != (registry.Admin{Enabled: false, Weight: 5}) {
		t.Fatalf("admins after reopen: %v", admins)
	}
	rec, ok, err := r.Config.Get(c, k)
	must(t, err)
	if !ok || len(rec.Revisions) != 4 || rec.Current != 3 || rec.Gray["blue"] != 4 {
		t.Fatalf("config after reopen: %+v", rec)
	}
	as, err := r.Config.Applied(c, k)
	must(t, err)
	if len(as) != 1 || as[0].Revision != 3 {
		t.Fatalf("applied after reopen: %+v", as)
	}
	_, f, err := r.Config.Append(c, config.File{Key: k, Content: []byte("next")}, 0)
	must(t, err)
	if f.Revision != 5 {
		t.Fatalf("revision after reopen: %d", f.Revision)
	}
}

func testResources(t *testing.T, s Stores) {
	st := s.Resources
	if st == nil {
		t.Skip("backend has no resource store")
	}
	c := ctx(t)
	k := resource.Key{Service: "iat", AppID: "app1", ID: "hot.words"}
	if _, ok, err := st.GetResource(c, k); err != nil || ok {
		t.Fatalf("get of a missing resource = %v, %v", ok, err)
	}
	at := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	m, err := st.PutResource(c, resource.Resource{Meta: resource.Meta{Key: k, Updated: at}, Data: []byte("a b")})
	must(t, err)
	if m.Revision != 1 || m.Size != 3 || m.SHA256 == "" || !m.Updated.Equal(at) {
		t.Fatalf("first put = %+v", m)
	}
	m, err = st.PutResource(c, resource.Resource{Meta: resource.Meta{Key: k, Updated: at}, Data: []byte("c")})
	must(t, err)
	if m.Revision != 2 || m.Size != 1 {
		t.Fatalf("second put = %+v", m)
	}
	// Same res_id under another app and another service: no collision.
	other := []resource.Key{{Service: "iat", AppID: "app2", ID: "hot.words"}, {Service: "iat2", AppID: "app1", ID: "hot.words"}}
	for i, o := range other {
		_, err := st.PutResource(c, resource.Resource{Meta: resource.Meta{Key: o, Updated: at}, Data: []byte{byte(i)}})
		must(t, err)
	}
	_, err = st.PutResource(c, resource.Resource{Meta: resource.Meta{Key: resource.Key{Service: "iat", AppID: "app1", ID: "empty"}, Updated: at}})
	must(t, err)
	r, ok, err := st.GetResource(c, k)
	if err != nil || !ok || string(r.Data) != "c" || r.Revision != 2 || r.Key != k {
		t.Fatalf("get = %+v, %v, %v", r, ok, err)
	}
	if r, ok, err := st.GetResource(c, resource.Key{Service: "iat", AppID: "app1", ID: "empty"}); err != nil || !ok || r.Data == nil || len(r.Data) != 0 {
		t.Fatalf("get of an empty resource = %+v, %v, %v", r, ok, err)
	}
	ms, err := st.ListResources(c, "iat", "")
	must(t, err)
	if len(ms) != 3 || ms[0].AppID != "app1" || ms[0].ID != "empty" || ms[1].ID != "hot.words" || ms[2].AppID != "app2" {
		t.Fatalf("list iat = %+v", ms)
	}
	ms, err = st.ListResources(c, "iat", "app2")
	must(t, err)
	if len(ms) != 1 || ms[0].Key != other[0] {
		t.Fatalf("list iat/app2 = %+v", ms)
	}
	if ms, err := st.ListResources(c, "ia", ""); err != nil || len(ms) != 0 {
		t.Fatalf("list of a service name prefix = %+v, %v", ms, err)
	}
	ok, err = st.DeleteResource(c, k)
	if err != nil || !ok {
		t.Fatalf("delete = %v, %v", ok, err)
	}
	if ok, err := st.DeleteResource(c, k); err != nil || ok {
		t.Fatalf("second delete = %v, %v", ok, err)
	}
	if _, ok, err := st.GetResource(c, k); err != nil || ok {
		t.Fatalf("get after delete = %v, %v", ok, err)
	}
	if r, ok, _ := st.GetResource(c, other[0]); !ok || string(r.Data) != "\x00" {
		t.Fatalf("another app's resource after delete = %+v, %v", r, ok)
	}
	m, err = st.PutResource(c, resource.Resource{Meta: resource.Meta{Key: k, Updated: at}, Data: []byte("d")})
	if err != nil || m.Revision != 1 {
		t.Fatalf("put after delete = %+v, %v", m, err)
	}
	if s.Reopen != nil {
		re := s.Reopen(t)
		if r, ok, err := re.Resources.GetResource(c, k); err != nil || !ok || string(r.Data) != "d" {
			t.Fatalf("get after reopen = %+v, %v, %v", r, ok, err)
		}
	}
}

func testResourcesLarge(t *testing.T, s Stores) {
	st := s.Resources
	if st == nil {
		t.Skip("backend has no resource store")
	}
	c := ctx(t)
	k := resource.Key{Service: "iat", AppID: "app1", ID: "big"}
	for rev, n := range []int{resource.DefaultMaxSize, 700 << 10} {
		data := bytes.Repeat([]byte{byte(rev), 1, 2, 3, 4, 5, 6}, n/7+1)[:n]
		m, err := st.PutResource(c, resource.Resource{Meta: resource.Meta{Key: k}, Data: data})
		must(t, err)
		if m.Revision != int64(rev+1) || m.Size != int64(n) {
			t.Fatalf("put %d bytes = %+v", n, m)
		}
		r, ok, err := st.GetResource(c, k)
		if err != nil || !ok || !bytes.Equal(r.Data, data) {
			t.Fatalf("get %d bytes: ok=%v err=%v len=%d", n, ok, err, len(r.Data))
		}
	}
	ok, err := st.DeleteResource(c, k)
	if err != nil || !ok {
		t.Fatalf("delete = %v, %v", ok, err)
	}
}
