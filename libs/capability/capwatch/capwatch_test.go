package capwatch

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/capability"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func readIST(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/schema_ist.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeConfig is an in-test polaris config server: one prefix watch at a time, events
// pushed by the test; Watch streams can be broken to test reconnects.
type fakeConfig struct {
	polarispb.UnimplementedConfigServer
	mu      sync.Mutex
	files   map[string]*polarispb.ConfigFile
	watches map[chan *polarispb.ConfigEvent]bool
	reports []*polarispb.ReportAppliedRequest
	opened  int
}

func (f *fakeConfig) Watch(req *polarispb.WatchConfigRequest, ss polarispb.Config_WatchServer) error {
	ch := make(chan *polarispb.ConfigEvent, 16)
	f.mu.Lock()
	snap := &polarispb.ConfigEvent{Type: polarispb.ConfigEvent_TYPE_SNAPSHOT}
	for _, file := range f.files {
		if strings.HasPrefix(file.GetKey().GetFile(), req.GetKey().GetFile()) {
			snap.Files = append(snap.Files, file)
		}
	}
	f.watches[ch] = true
	f.opened++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watches, ch)
		f.mu.Unlock()
	}()
	if err := ss.Send(snap); err != nil {
		return err
	}
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return context.Canceled
			}
			if err := ss.Send(ev); err != nil {
				return err
			}
		case <-ss.Context().Done():
			return nil
		}
	}
}

func (f *fakeConfig) ReportApplied(_ context.Context, req *polarispb.ReportAppliedRequest) (*polarispb.ReportAppliedResponse, error) {
	f.mu.Lock()
	f.reports = append(f.reports, req)
	f.mu.Unlock()
	return &polarispb.ReportAppliedResponse{}, nil
}

func (f *fakeConfig) push(name string, rev int64, content []byte) {
	key := DefaultKey()
	key.File = name
	file := &polarispb.ConfigFile{Key: key, Content: content, Revision: rev}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[name] = file
	for ch := range f.watches {
		ch <- &polarispb.ConfigEvent{Type: polarispb.ConfigEvent_TYPE_UPDATED, Files: []*polarispb.ConfigFile{file}}
	}
}

func (f *fakeConfig) remove(name string) {
	key := DefaultKey()
	key.File = name
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, name)
	for ch := range f.watches {
		ch <- &polarispb.ConfigEvent{Type: polarispb.ConfigEvent_TYPE_REMOVED, Files: []*polarispb.ConfigFile{{Key: key}}}
	}
}

func (f *fakeConfig) breakWatches() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.watches {
		close(ch)
		delete(f.watches, ch)
	}
}

func (f *fakeConfig) lastReport() *polarispb.ReportAppliedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reports) == 0 {
		return nil
	}
	return f.reports[len(f.reports)-1]
}

func TestWatcher(t *testing.T) {
	fake := &fakeConfig{files: map[string]*polarispb.ConfigFile{}, watches: map[chan *polarispb.ConfigEvent]bool{}}
	fake.push("schema_ist.json", 1, readIST(t))
	fake.push("other.json", 1, []byte(`{"meta":{"serviceId":"other"}}`))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	polarispb.RegisterConfigServer(gs, fake)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()

	reg := capability.NewRegistry()
	w := New(polarispb.NewConfigClient(cc), reg, nil, Options{
		Caller: &polarispb.Caller{Addr: "gate:1"}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}, zerolog.New(zerolog.NewTestWriter(t)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-w.Synced():
	case <-time.After(5 * time.Second):
		t.Fatal("not synced")
	}
	held, ok := reg.Get("ist")
	if !ok || reg.Len() != 1 {
		t.Fatalf("snapshot: %v, %d schemas (files outside the prefix must be ignored)", ok, reg.Len())
	}

	// A bad revision is rejected and reported; the good one stays.
	fake.push("schema_ist.json", 2, []byte(`{"meta":{"serviceId":"ist"},"schemainput":{"type":7}}`))
	testpoll.Until(t, 5*time.Second, "rejection report", func() bool { r := fake.lastReport(); return r != nil && r.GetRevision() == 2 })
	if r := fake.lastReport(); r.GetApplied() || r.GetReason() == "" || r.GetCaller().GetAddr() != "gate:1" {
		t.Fatalf("report %v", r)
	}
	if s, _ := reg.Get("ist"); s != held {
		t.Fatal("rejected revision replaced the schema")
	}

	// A good revision is applied; holders of the old one keep it.
	fake.push("schema_ist.json", 3, []byte(`{"meta":{"serviceId":"ist","read_timeout":1}}`))
	testpoll.Until(t, 5*time.Second, "revision 3", func() bool { s, _ := reg.Get("ist"); return s.Revision() == 3 })
	if held.ReadTimeout() != 5*time.Second {
		t.Fatal("held schema changed")
	}
	// The apply report follows the registry update: wait for it, then check it.
	testpoll.Until(t, 5*time.Second, "report of revision 3", func() bool { r := fake.lastReport(); return r != nil && r.GetRevision() == 3 })
	if r := fake.lastReport(); !r.GetApplied() {
		t.Fatalf("report %v", r)
	}

	fake.push("schema_tts.json", 1, []byte(`{"meta":{"serviceId":"tts"}}`))
	testpoll.Until(t, 5*time.Second, "tts", func() bool { _, ok := reg.Get("tts"); return ok })
	fake.remove("schema_tts.json")
	testpoll.Until(t, 5*time.Second, "tts removed", func() bool { _, ok := reg.Get("tts"); return !ok })

	// A broken watch reconnects; the new snapshot is the whole set.
	fake.breakWatches()
	fake.mu.Lock()
	delete(fake.files, "schema_ist.json")
	fake.files["schema_asr.json"] = &polarispb.ConfigFile{Key: &polarispb.ConfigKey{File: "schema_asr.json"}, Revision: 9, Content: []byte(`{"meta":{"serviceId":"asr"}}`)}
	fake.mu.Unlock()
	testpoll.Until(t, 5*time.Second, "resync", func() bool { _, ok := reg.Get("asr"); _, old := reg.Get("ist"); return ok && !old })
}
