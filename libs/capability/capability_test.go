package capability

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

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
	b, err := os.ReadFile("testdata/schema_ist.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAccessors(t *testing.T) {
	s, err := Parse(readIST(t))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("id", s.ID(), "ist")
	check("version", s.Version(), "v1.0")
	check("route", s.Route(), "/v1/private/ist")
	in, ok := s.InputType("input")
	check("input type", in, DataAudio)
	check("input known", ok, true)
	_, ok = s.InputType("nope")
	check("unknown input", ok, false)
	acc, _ := s.AcceptType("result")
	check("accept type", acc, DataText)
	check("read timeout", s.ReadTimeout(), 5*time.Second)
	check("session timeout", s.SessionTimeout(), 60*time.Second)
	check("once timeout", s.OnceTimeout(), 2500*time.Millisecond)
	st, ok := s.HTTPStatus(10110)
	check("codeMap", st, 429)
	check("codeMap ok", ok, true)
	check("seq type", s.OutputAttrType("result", "seq"), AttrNumber)
	check("final type", s.OutputAttrType("result", "final"), AttrBool)
	check("encoding type", s.OutputAttrType("result", "encoding"), AttrString)
	check("unknown type", s.OutputAttrType("result", "x"), AttrUnknown)
	check("has input schema", s.HasInputSchema(), true)
}

func TestParseDefaultsAndErrors(t *testing.T) {
	s, err := Parse([]byte(`{"meta":{"serviceId":"echo","route":"/v1/private/echo2/","input":{"data":{"dataType":"text"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Route() != "/v1/private/echo2" || s.Services()[0] != "echo" || s.HasInputSchema() {
		t.Fatalf("defaults: %q %v %v", s.Route(), s.Services(), s.HasInputSchema())
	}
	if d, _ := s.InputType("data"); d != DataText {
		t.Fatalf("meta-level input: %q", d)
	}
	for name, doc := range map[string]string{
		"no meta":        `{}`,
		"bad json":       `{"meta":`,
		"no id":          `{"meta":{}}`,
		"id with slash":  `{"meta":{"serviceId":"a/b"}}`,
		"bad data type":  `{"meta":{"serviceId":"a","a":{"input":{"x":{"dataType":"sound"}}}}}`,
		"bad timeout":    `{"meta":{"serviceId":"a","read_timeout":"soon"}}`,
		"bad codeMap":    `{"meta":{"serviceId":"a","codeMap":{"x":400}}}`,
		"bad status":     `{"meta":{"serviceId":"a","codeMap":{"10163":42}}}`,
		"relative route": `{"meta":{"serviceId":"a","route":"v1/a"}}`,
		"bad schema":     `{"meta":{"serviceId":"a"},"schemainput":{"type":"nothing"}}`,
		"external ref":   `{"meta":{"serviceId":"a"},"schemainput":{"$ref":"http://example.com/s.json"}}`,
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestValidate(t *testing.T) {
	s, err := Parse(readIST(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateJSON([]byte(`{"header":{"app_id":"a","status":0},"parameter":{"ist":{"eos":1000}},"payload":{"input":{"audio":"AA==","sample_rate":16000}}}`)); err != nil {
		t.Fatalf("valid request rejected: %v", err)
	}
	for doc, mention := range map[string]string{
		`{"payload":{}}`: "header",
		`{"header":{"app_id":"a"},"payload":{"input":{"sample_rate":44100}}}`: "sample_rate",
		`{"header":{"app_id":"a"},"payload":{"other":{}}}`:                    "other",
		`{"header":{"app_id":"a","status":7}}`:                                "status",
		`{"header":`:                                                          "json",
	} {
		err := s.ValidateJSON([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), mention) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v should mention %q on one line", doc, err, mention)
		}
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	if _, err := r.Put("schema_ist.json", 1, readIST(t)); err != nil {
		t.Fatal(err)
	}
	s, ok := r.ByRoute("/v1/private/ist/")
	if !ok || s.ID() != "ist" || s.Revision() != 1 || s.File() != "schema_ist.json" {
		t.Fatalf("by route: %v %v", s, ok)
	}
	if _, err := r.Put("schema_other.json", 1, []byte(`{"meta":{"serviceId":"ist"}}`)); err == nil {
		t.Fatal("duplicate serviceId accepted")
	}
	if _, err := r.Put("schema_other.json", 1, []byte(`{"meta":{"serviceId":"x","route":"/v1/private/ist"}}`)); err == nil {
		t.Fatal("duplicate route accepted")
	}
	if _, err := r.Put("schema_ist.json", 2, []byte(`{"meta":`)); err == nil {
		t.Fatal("bad revision accepted")
	}
	if s, _ := r.Get("ist"); s.Revision() != 1 {
		t.Fatal("bad revision replaced the good one")
	}
	if _, err := r.Put("schema_tts.json", 3, []byte(`{"meta":{"serviceId":"tts"}}`)); err != nil {
		t.Fatal(err)
	}
	if got := len(r.List()); got != 2 {
		t.Fatalf("list: %d", got)
	}
	r.Retain(map[string]bool{"schema_tts.json": true})
	if _, ok := r.Get("ist"); ok || r.Len() != 1 {
		t.Fatal("retain kept a dropped file")
	}
	if !r.Remove("schema_tts.json") || r.Remove("schema_tts.json") || r.Len() != 0 {
		t.Fatal("remove")
	}
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

	reg := NewRegistry()
	w := NewWatcher(polarispb.NewConfigClient(cc), reg, nil, WatchOptions{
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

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"meta":{"serviceId":"ist","ist":{"input":{"input":{"dataType":"audio"}}}},"schemainput":{"type":"object"},"schemaoutput":{"properties":{"r":{"properties":{"seq":{"type":"integer"}}}}}}`))
	f.Add([]byte(`{"meta":{"serviceId":"a","codeMap":{"1":200},"read_timeout":"1.5"}}`))
	f.Add([]byte(`{"meta":{"serviceId":"a"},"schemainput":{"$ref":"#/definitions/x","definitions":{"x":{"type":"string"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		if s.ID() == "" || !strings.HasPrefix(s.Route(), "/") {
			t.Fatalf("accepted id %q route %q", s.ID(), s.Route())
		}
		_ = s.ValidateJSON([]byte(`{"header":{"app_id":"a"},"payload":{}}`))
	})
}
